// A subset of Helm's template language (Go text/template plus the Sprig functions the pulltrace
// chart uses), so the tests can render charts/pulltrace where no helm binary can be installed.
// It follows Go's rules where they bite charts: `{{-`/`-}}` trimming, truthiness, short-circuit
// and/or, `eq` refusing to compare different kinds (a float64 from values.yaml with an int
// literal), float64 printed as Go prints it (1e+06), nil field access failing, variables scoped
// to their block. Anything outside the subset throws a TemplateError naming the file and line,
// so a template that uses more fails its test instead of rendering wrongly.
import { stringify } from 'yaml';

/** A Go int64: template integer literals and the results of `int`/`int64`. Numbers that come
 * from values (YAML) are float64 in Helm, and are plain JS numbers here. */
export class GoInt {
  constructor(readonly value: number) {}
}

export class TemplateError extends Error {}

/** Objects whose missing fields are an error (Go structs: .Release, .Chart, .Capabilities). */
const STRUCT = Symbol('struct');

/** Marks an object as a Go struct: reading a field it lacks throws, as in Go templates. */
export function goStruct<T extends object>(fields: T): T {
  return Object.assign(Object.create(null), fields, { [STRUCT]: true }) as T;
}

type Value = unknown;

interface Field {
  kind: 'field';
  /** '.' for dot, or a variable name such as '$' or '$name'. */
  base: string;
  path: string[];
}
type Operand =
  | { kind: 'literal'; value: Value }
  | Field
  | { kind: 'ident'; name: string }
  | { kind: 'pipe'; pipe: Pipeline };
interface Pipeline {
  decl: string[];
  /** ':=' declares, '=' assigns, '' neither. */
  op: ':=' | '=' | '';
  cmds: Operand[][];
}
type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipe: Pipeline; where: string }
  | { kind: 'if'; branches: { cond: Pipeline; body: Node[] }[]; otherwise: Node[] | null; where: string }
  | { kind: 'with' | 'range'; pipe: Pipeline; body: Node[]; otherwise: Node[] | null; where: string };

// ---------------------------------------------------------------------------------------------
// Lexing: text and actions, with trim markers and comments.

interface RawAction {
  text: string;
  where: string;
}
type Piece = string | RawAction;

function scan(source: string, file: string): Piece[] {
  const pieces: Piece[] = [];
  let i = 0;
  let trimNext = false;
  const lineAt = (pos: number) => source.slice(0, pos).split('\n').length;
  while (i < source.length) {
    const open = source.indexOf('{{', i);
    let text = open === -1 ? source.slice(i) : source.slice(i, open);
    if (trimNext) text = text.replace(/^\s+/, '');
    trimNext = false;
    if (open === -1) {
      pieces.push(text);
      break;
    }
    let j = open + 2;
    const trimLeft = /^-\s/.test(source.slice(j, j + 2));
    if (trimLeft) text = text.replace(/\s+$/, '');
    pieces.push(text);
    if (trimLeft) j += 2;
    const where = `${file}:${lineAt(open)}`;
    const rest = source.slice(j).replace(/^\s*/, '');
    if (rest.startsWith('/*')) {
      const endComment = source.indexOf('*/', j);
      if (endComment === -1) throw new TemplateError(`${where}: unclosed comment`);
      const close = /^\s*(-\s*)?\}\}/.exec(source.slice(endComment + 2));
      if (close === null) throw new TemplateError(`${where}: comment must end with */}}`);
      trimNext = close[1] !== undefined;
      i = endComment + 2 + close[0].length;
      continue;
    }
    // Find the closing braces outside string literals.
    let k = j;
    let quote: string | null = null;
    for (; k < source.length; k++) {
      const c = source[k];
      if (quote !== null) {
        if (c === '\\' && quote === '"') k++;
        else if (c === quote) quote = null;
      } else if (c === '"' || c === '`') quote = c;
      else if (c === '}' && source[k + 1] === '}') break;
    }
    if (k >= source.length) throw new TemplateError(`${where}: unclosed action`);
    let inner = source.slice(j, k);
    if (/\s-$/.test(inner)) {
      inner = inner.slice(0, -1);
      trimNext = true;
    }
    pieces.push({ text: inner.trim(), where });
    i = k + 2;
  }
  return pieces;
}

const TOKEN =
  /\s+|"(?:[^"\\\n]|\\.)*"|`[^`]*`|:=|[()|,=]|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*|\.(?:[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)?|[A-Za-z_][A-Za-z0-9_]*/y;

function tokenize(text: string, where: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(text);
    if (m === null) throw new TemplateError(`${where}: cannot read "${text.slice(at)}"`);
    if (!/^\s+$/.test(m[0])) out.push(m[0]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parsing.

function parsePipeline(tokens: string[], where: string): Pipeline {
  let pos = 0;
  const decl: string[] = [];
  let op: Pipeline['op'] = '';
  // `$a :=`, `$a =`, `$i, $v :=`
  const declEnd = tokens.findIndex((t) => t === ':=' || t === '=');
  if (
    declEnd !== -1 &&
    tokens.slice(0, declEnd).every((t, n) => (n % 2 === 0 ? /^\$\w*$/.test(t) : t === ','))
  ) {
    for (let n = 0; n < declEnd; n += 2) decl.push(tokens[n] ?? '');
    op = tokens[declEnd] as ':=' | '=';
    pos = declEnd + 1;
  }
  const parseCommands = (stopAtParen: boolean): Operand[][] => {
    const cmds: Operand[][] = [];
    let cmd: Operand[] = [];
    while (pos < tokens.length) {
      const t = tokens[pos] ?? '';
      if (t === ')') {
        if (!stopAtParen) throw new TemplateError(`${where}: unexpected )`);
        break;
      }
      pos++;
      if (t === '|') {
        if (cmd.length === 0) throw new TemplateError(`${where}: empty command before |`);
        cmds.push(cmd);
        cmd = [];
      } else if (t === '(') {
        const inner = parseCommands(true);
        if (tokens[pos] !== ')') throw new TemplateError(`${where}: missing )`);
        pos++;
        cmd.push({ kind: 'pipe', pipe: { decl: [], op: '', cmds: inner } });
      } else cmd.push(parseOperand(t, where));
    }
    if (cmd.length === 0) throw new TemplateError(`${where}: empty command`);
    cmds.push(cmd);
    return cmds;
  };
  const cmds = parseCommands(false);
  if (pos !== tokens.length) throw new TemplateError(`${where}: unexpected ${tokens[pos] ?? ''}`);
  return { decl, op, cmds };
}

function parseOperand(t: string, where: string): Operand {
  if (t.startsWith('"')) {
    try {
      return { kind: 'literal', value: JSON.parse(t) as string };
    } catch {
      throw new TemplateError(`${where}: string literal ${t} uses an escape this renderer does not read`);
    }
  }
  if (t.startsWith('`')) return { kind: 'literal', value: t.slice(1, -1) };
  if (/^-?\d/.test(t)) return { kind: 'literal', value: /[.eE]/.test(t) ? Number(t) : new GoInt(Number(t)) };
  if (t === 'true' || t === 'false') return { kind: 'literal', value: t === 'true' };
  if (t === 'nil') return { kind: 'literal', value: null };
  if (t.startsWith('.')) return { kind: 'field', base: '.', path: t === '.' ? [] : t.slice(1).split('.') };
  if (t.startsWith('$')) {
    const [name = '$', ...path] = t.split('.');
    return { kind: 'field', base: name, path };
  }
  if (/^[A-Za-z_]\w*$/.test(t)) return { kind: 'ident', name: t };
  throw new TemplateError(`${where}: unexpected ${t}`);
}

interface Frame {
  keyword: 'root' | 'if' | 'with' | 'range' | 'define';
  nodes: Node[];
  node?: Node;
  name?: string;
  where: string;
}

/** Parses one template file: its body and the templates it defines. */
export function parseTemplate(source: string, file: string): { body: Node[]; defines: Map<string, Node[]> } {
  const defines = new Map<string, Node[]>();
  const root: Frame = { keyword: 'root', nodes: [], where: file };
  const stack: Frame[] = [root];
  const top = (): Frame => stack[stack.length - 1] ?? root;
  for (const piece of scan(source, file)) {
    if (typeof piece === 'string') {
      if (piece !== '') top().nodes.push({ kind: 'text', text: piece });
      continue;
    }
    const { text, where } = piece;
    const word = /^(\w+)\b\s*/.exec(text);
    const keyword = word?.[1] ?? '';
    const rest = word === null ? text : text.slice(word[0].length);
    if (keyword === 'if' || keyword === 'with' || keyword === 'range') {
      const pipe = parsePipeline(tokenize(rest, where), where);
      const node: Node =
        keyword === 'if'
          ? { kind: 'if', branches: [{ cond: pipe, body: [] }], otherwise: null, where }
          : { kind: keyword, pipe, body: [], otherwise: null, where };
      top().nodes.push(node);
      stack.push({
        keyword,
        nodes: node.kind === 'if' ? (node.branches[0]?.body ?? []) : node.body,
        node,
        where,
      });
    } else if (keyword === 'else') {
      const frame = top();
      const node = frame.node;
      if (node === undefined || (node.kind !== 'if' && node.kind !== 'with' && node.kind !== 'range')) {
        throw new TemplateError(`${where}: else outside if/with/range`);
      }
      if (node.kind === 'if' && rest.startsWith('if ')) {
        if (node.otherwise !== null) throw new TemplateError(`${where}: else if after else`);
        const branch = { cond: parsePipeline(tokenize(rest.slice(3), where), where), body: [] as Node[] };
        node.branches.push(branch);
        frame.nodes = branch.body;
      } else if (rest === '') {
        if (node.otherwise !== null) throw new TemplateError(`${where}: two else branches`);
        node.otherwise = [];
        frame.nodes = node.otherwise;
      } else throw new TemplateError(`${where}: "else ${rest}" is not supported`);
    } else if (keyword === 'end') {
      const frame = stack.pop();
      if (frame === undefined || frame.keyword === 'root')
        throw new TemplateError(`${where}: end without a block`);
      if (frame.keyword === 'define') defines.set(frame.name ?? '', frame.nodes);
    } else if (keyword === 'define') {
      if (stack.length !== 1) throw new TemplateError(`${where}: define must be at the top level`);
      const name = /^"([^"]+)"$/.exec(rest)?.[1];
      if (name === undefined) throw new TemplateError(`${where}: define needs a quoted name`);
      stack.push({ keyword: 'define', nodes: [], name, where });
    } else if (['template', 'block', 'break', 'continue'].includes(keyword)) {
      throw new TemplateError(`${where}: "${keyword}" is not supported (use include)`);
    } else {
      top().nodes.push({ kind: 'action', pipe: parsePipeline(tokenize(text, where), where), where });
    }
  }
  if (stack.length !== 1)
    throw new TemplateError(`${top().where}: ${top().keyword} is never closed with end`);
  return { body: root.nodes, defines };
}

// ---------------------------------------------------------------------------------------------
// Values: Go's view of them.

function isMap(v: Value): v is Record<string, Value> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof GoInt);
}

type Kind = 'nil' | 'bool' | 'int' | 'float' | 'string' | 'list' | 'map' | 'func';

function kindOf(v: Value): Kind {
  if (v === null || v === undefined) return 'nil';
  if (typeof v === 'boolean') return 'bool';
  if (v instanceof GoInt) return 'int';
  if (typeof v === 'number') return 'float';
  if (typeof v === 'string') return 'string';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'function') return 'func';
  return 'map';
}

/** Go template truthiness. */
export function truth(v: Value): boolean {
  switch (kindOf(v)) {
    case 'nil':
      return false;
    case 'bool':
      return v as boolean;
    case 'int':
      return (v as GoInt).value !== 0;
    case 'float':
      return (v as number) !== 0;
    case 'string':
      return (v as string) !== '';
    case 'list':
      return (v as unknown[]).length > 0;
    case 'map':
      return Object.keys(v as object).length > 0;
    case 'func':
      return true;
  }
}

/** A float64 as Go's %v prints it: shortest digits, exponent form from 1e+06 and below 1e-04. */
export function goFloat(f: number): string {
  if (Number.isNaN(f)) return 'NaN';
  if (!Number.isFinite(f)) return f > 0 ? '+Inf' : '-Inf';
  if (f === 0) return '0';
  const [mantissa = '', expText = '0'] = f.toExponential().split('e');
  const exp = Number(expText);
  if (exp < -4 || exp >= 6) {
    return `${mantissa}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return String(f);
}

/** What `{{ x }}` prints; maps and lists are refused (use toYaml/toJson). */
function printed(v: Value, where: string): string {
  switch (kindOf(v)) {
    case 'nil':
      return '<no value>';
    case 'bool':
    case 'string':
      return String(v);
    case 'int':
      return String((v as GoInt).value);
    case 'float':
      return goFloat(v as number);
    default:
      throw new TemplateError(`${where}: printing a ${kindOf(v)} directly; use toYaml or toJson`);
  }
}

/** Plain data for YAML/JSON: GoInts become numbers, struct markers are dropped. */
function plain(v: Value): unknown {
  if (v instanceof GoInt) return v.value;
  if (Array.isArray(v)) return v.map(plain);
  if (isMap(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = plain(v[k]);
    return out;
  }
  return v ?? null;
}

function asNumber(v: Value, fn: string): number {
  if (v instanceof GoInt) return v.value;
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  if (v === null || v === undefined) return 0;
  throw new TemplateError(`${fn}: expected a number, got ${kindOf(v)}`);
}

function asString(v: Value): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  return printed(v, 'string conversion');
}

function compareBasic(a: Value, b: Value, fn: string): number {
  const ka = kindOf(a);
  const kb = kindOf(b);
  if (ka !== kb) throw new TemplateError(`${fn}: incompatible types for comparison (${ka} and ${kb})`);
  if (ka === 'string') return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0;
  if (ka === 'int' || ka === 'float') return asNumber(a, fn) - asNumber(b, fn);
  if (ka === 'bool' && (fn === 'eq' || fn === 'ne')) return a === b ? 0 : 1;
  throw new TemplateError(`${fn}: cannot compare values of kind ${ka}`);
}

function eq(a: Value, ...others: Value[]): boolean {
  if (others.length === 0) throw new TemplateError('eq: missing argument for comparison');
  return others.some((b) => {
    if (kindOf(a) === 'nil' || kindOf(b) === 'nil') return kindOf(a) === kindOf(b);
    return compareBasic(a, b, 'eq') === 0;
  });
}

function indent(n: Value, s: Value): string {
  const pad = ' '.repeat(asNumber(n, 'indent'));
  return pad + asString(s).replace(/\n/g, `\n${pad}`);
}

function goQuote(s: string): string {
  return JSON.stringify(s);
}

/** Masterminds/semver constraints as Helm uses them: `>=1.28-0`, `<1.30.0`, comma = and. */
export function semverCompare(constraint: string, version: string): boolean {
  const parse = (v: string) => {
    const m = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(v.trim());
    if (m === null) throw new TemplateError(`semverCompare: "${v}" is not a version`);
    return { nums: [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)], pre: m[4] ?? '' };
  };
  const cmp = (a: ReturnType<typeof parse>, b: ReturnType<typeof parse>): number => {
    for (let i = 0; i < 3; i++) {
      const d = (a.nums[i] ?? 0) - (b.nums[i] ?? 0);
      if (d !== 0) return d;
    }
    if (a.pre === b.pre) return 0;
    if (a.pre === '') return 1;
    if (b.pre === '') return -1;
    return a.pre < b.pre ? -1 : 1;
  };
  const v = parse(version);
  return constraint.split(',').every((part) => {
    const m = /^\s*(>=|<=|!=|>|<|=)?\s*(\S+)\s*$/.exec(part);
    if (m === null) throw new TemplateError(`semverCompare: cannot read constraint "${constraint}"`);
    const c = parse(m[2] ?? '');
    // A version with a prerelease only satisfies constraints that have one (Masterminds' rule).
    if (v.pre !== '' && c.pre === '') return false;
    const d = cmp(v, c);
    switch (m[1] ?? '=') {
      case '>=':
        return d >= 0;
      case '<=':
        return d <= 0;
      case '>':
        return d > 0;
      case '<':
        return d < 0;
      case '!=':
        return d !== 0;
      default:
        return d === 0;
    }
  });
}

function goPrintf(format: string, args: Value[]): string {
  let n = 0;
  return format.replace(/%([sdvq%])/g, (_m, verb: string) => {
    if (verb === '%') return '%';
    const a = args[n++];
    if (verb === 'd') {
      if (!(a instanceof GoInt)) return `%!d(${kindOf(a)}=${asString(a)})`;
      return String(a.value);
    }
    if (verb === 'q') return goQuote(asString(a));
    return asString(a);
  });
}

type Func = (...args: Value[]) => Value;

/** The Sprig and Helm functions the chart may use (lazy ones are handled by the evaluator). */
const FUNCS: Record<string, Func> = {
  toYaml: (v) =>
    stringify(plain(v), { version: '1.1', sortMapEntries: true, lineWidth: 0 }).replace(/\n$/, ''),
  toJson: (v) => JSON.stringify(plain(v)),
  indent: (n, s) => indent(n, s),
  nindent: (n, s) => `\n${indent(n, s)}`,
  quote: (...xs) =>
    xs
      .filter((x) => x !== null && x !== undefined)
      .map((x) => goQuote(asString(x)))
      .join(' '),
  squote: (...xs) => xs.map((x) => `'${asString(x)}'`).join(' '),
  default: (d, ...given) => (given.length === 0 || !truth(given[0]) ? d : given[0]),
  required: (msg, v) => {
    if (v === null || v === undefined || v === '') throw new TemplateError(asString(msg));
    return v;
  },
  fail: (msg) => {
    throw new TemplateError(asString(msg));
  },
  eq,
  ne: (a, b) => !eq(a, b),
  lt: (a, b) => compareBasic(a, b, 'lt') < 0,
  le: (a, b) => compareBasic(a, b, 'le') <= 0,
  gt: (a, b) => compareBasic(a, b, 'gt') > 0,
  ge: (a, b) => compareBasic(a, b, 'ge') >= 0,
  not: (v) => !truth(v),
  printf: (f, ...args) => goPrintf(asString(f), args),
  trunc: (n, s) => asString(s).slice(0, asNumber(n, 'trunc')),
  trimSuffix: (suf, s) =>
    asString(s).endsWith(asString(suf))
      ? asString(s).slice(0, -asString(suf).length || undefined)
      : asString(s),
  trimPrefix: (pre, s) =>
    asString(s).startsWith(asString(pre)) ? asString(s).slice(asString(pre).length) : asString(s),
  trim: (s) => asString(s).trim(),
  contains: (sub, s) => asString(s).includes(asString(sub)),
  hasPrefix: (pre, s) => asString(s).startsWith(asString(pre)),
  hasSuffix: (suf, s) => asString(s).endsWith(asString(suf)),
  replace: (from, to, s) => asString(s).split(asString(from)).join(asString(to)),
  lower: (s) => asString(s).toLowerCase(),
  upper: (s) => asString(s).toUpperCase(),
  join: (sep, list) => (Array.isArray(list) ? list.map(asString).join(asString(sep)) : asString(list)),
  list: (...xs) => xs,
  dict: (...kv) => {
    const out: Record<string, Value> = {};
    for (let i = 0; i < kv.length; i += 2) out[asString(kv[i])] = kv[i + 1];
    return out;
  },
  concat: (...lists) =>
    lists.flatMap((l) => {
      if (!Array.isArray(l)) throw new TemplateError(`concat: expected lists, got ${kindOf(l)}`);
      return l as Value[];
    }),
  uniq: (list) => {
    if (!Array.isArray(list)) throw new TemplateError(`uniq: expected a list, got ${kindOf(list)}`);
    const out: Value[] = [];
    for (const x of list)
      if (!out.some((y) => JSON.stringify(plain(y)) === JSON.stringify(plain(x)))) out.push(x);
    return out;
  },
  has: (needle, list) =>
    Array.isArray(list) && list.some((x) => JSON.stringify(plain(x)) === JSON.stringify(plain(needle))),
  hasKey: (m, key) => isMap(m) && Object.hasOwn(m, asString(key)),
  empty: (v) => !truth(v),
  toString: (v: Value) => asString(v),
  int: (v) => new GoInt(Math.trunc(asNumber(v, 'int'))),
  int64: (v) => new GoInt(Math.trunc(asNumber(v, 'int64'))),
  dir: (p) => {
    const s = asString(p).replace(/\/+$/, '');
    const i = s.lastIndexOf('/');
    return i < 0 ? '.' : i === 0 ? '/' : s.slice(0, i);
  },
  base: (p) => asString(p).replace(/\/+$/, '').split('/').pop() ?? '',
  semverCompare: (c, v) => semverCompare(asString(c), asString(v)),
  b64enc: (s) => Buffer.from(asString(s)).toString('base64'),
  ternary: (a, b, cond) => (truth(cond) ? a : b),
  kindIs: (k, v) => {
    const kind = kindOf(v);
    const goKind = {
      nil: 'invalid',
      bool: 'bool',
      int: 'int64',
      float: 'float64',
      string: 'string',
      list: 'slice',
      map: 'map',
      func: 'func',
    }[kind];
    return asString(k) === goKind;
  },
};

// ---------------------------------------------------------------------------------------------
// Evaluation.

class Scope {
  private readonly vars = new Map<string, Value>();
  constructor(private readonly parent: Scope | null) {}
  declare(name: string, v: Value): void {
    this.vars.set(name, v);
  }
  /** The scope that declared `name`, this one or an enclosing one. */
  private owner(name: string): Scope | null {
    return this.vars.has(name) ? this : (this.parent?.owner(name) ?? null);
  }
  assign(name: string, v: Value, where: string): void {
    const s = this.owner(name);
    if (s === null) throw new TemplateError(`${where}: undefined variable ${name}`);
    s.vars.set(name, v);
  }
  get(name: string, where: string): Value {
    const s = this.owner(name);
    if (s === null) throw new TemplateError(`${where}: undefined variable ${name}`);
    return s.vars.get(name);
  }
}

/** Renders templates sharing one set of defines, as Helm does for all files of a chart. */
export class TemplateSet {
  private readonly defines = new Map<string, Node[]>();
  private readonly bodies = new Map<string, Node[]>();
  private depth = 0;

  /** Adds a file; its defines become visible to every file of the set. */
  add(file: string, source: string): void {
    const { body, defines } = parseTemplate(source, file);
    this.bodies.set(file, body);
    for (const [name, nodes] of defines) this.defines.set(name, nodes);
  }

  /** Renders one file with `data` as dot and `$`. Helm drops "<no value>" from the output. */
  render(file: string, data: Value): string {
    const body = this.bodies.get(file);
    if (body === undefined) throw new TemplateError(`no template file ${file}`);
    const scope = new Scope(null);
    scope.declare('$', data);
    return this.nodes(body, data, scope).replaceAll('<no value>', '');
  }

  private nodes(nodes: Node[], dot: Value, parent: Scope): string {
    const scope = new Scope(parent);
    let out = '';
    for (const node of nodes) {
      switch (node.kind) {
        case 'text':
          out += node.text;
          break;
        case 'action': {
          const v = this.pipeline(node.pipe, dot, scope, node.where);
          if (node.pipe.decl.length === 0) out += printed(v, node.where);
          break;
        }
        case 'if': {
          let done = false;
          for (const b of node.branches) {
            if (truth(this.pipeline(b.cond, dot, scope, node.where))) {
              out += this.nodes(b.body, dot, scope);
              done = true;
              break;
            }
          }
          if (!done && node.otherwise !== null) out += this.nodes(node.otherwise, dot, scope);
          break;
        }
        case 'with': {
          const inner = new Scope(scope);
          const v = this.pipeline(node.pipe, dot, inner, node.where);
          if (truth(v)) out += this.nodes(node.body, v, inner);
          else if (node.otherwise !== null) out += this.nodes(node.otherwise, dot, scope);
          break;
        }
        case 'range': {
          const inner = new Scope(scope);
          const { decl } = node.pipe;
          const v = this.pipeline({ ...node.pipe, decl: [], op: '' }, dot, inner, node.where);
          const entries: [Value, Value][] = Array.isArray(v)
            ? v.map((x, i) => [new GoInt(i), x])
            : isMap(v)
              ? Object.keys(v)
                  .sort()
                  .map((k) => [k, v[k]])
              : kindOf(v) === 'nil'
                ? []
                : (() => {
                    throw new TemplateError(`${node.where}: range over ${kindOf(v)}`);
                  })();
          if (entries.length === 0) {
            if (node.otherwise !== null) out += this.nodes(node.otherwise, dot, scope);
            break;
          }
          for (const [k, x] of entries) {
            if (decl.length === 1) inner.declare(decl[0] ?? '', x);
            if (decl.length === 2) {
              inner.declare(decl[0] ?? '', k);
              inner.declare(decl[1] ?? '', x);
            }
            out += this.nodes(node.body, x, inner);
          }
          break;
        }
      }
    }
    return out;
  }

  private pipeline(pipe: Pipeline, dot: Value, scope: Scope, where: string): Value {
    let piped: { value: Value } | null = null;
    for (const cmd of pipe.cmds) piped = { value: this.command(cmd, dot, scope, where, piped) };
    const v = piped?.value;
    if (pipe.decl.length > 1) throw new TemplateError(`${where}: two variables outside range`);
    const [name] = pipe.decl;
    if (name !== undefined) {
      if (pipe.op === ':=') scope.declare(name, v);
      else scope.assign(name, v, where);
    }
    return v;
  }

  private command(
    cmd: Operand[],
    dot: Value,
    scope: Scope,
    where: string,
    piped: { value: Value } | null,
  ): Value {
    const [head, ...rest] = cmd;
    if (head === undefined) throw new TemplateError(`${where}: empty command`);
    const arg = (op: Operand): Value => this.operand(op, dot, scope, where, true);
    const args = (): Value[] => [...rest.map(arg), ...(piped === null ? [] : [piped.value])];
    if (head.kind === 'ident') {
      const name = head.name;
      try {
        if (name === 'and' || name === 'or') {
          const ops = [...rest.map((op) => () => arg(op)), ...(piped === null ? [] : [() => piped.value])];
          if (ops.length === 0) throw new TemplateError(`${name}: needs arguments`);
          let v: Value = null;
          for (const next of ops) {
            v = next();
            if (name === 'and' ? !truth(v) : truth(v)) return v;
          }
          return v;
        }
        if (name === 'include') {
          const [tplName, data] = args();
          const nodes = this.defines.get(asString(tplName));
          if (nodes === undefined) throw new TemplateError(`include: no template "${asString(tplName)}"`);
          if (++this.depth > 50) throw new TemplateError('include: nested too deeply');
          try {
            const s = new Scope(null);
            s.declare('$', data);
            return this.nodes(nodes, data, s);
          } finally {
            this.depth--;
          }
        }
        const fn = Object.hasOwn(FUNCS, name) ? FUNCS[name] : undefined;
        if (fn === undefined) throw new TemplateError(`function "${name}" is not supported`);
        return fn(...args());
      } catch (err) {
        if (err instanceof TemplateError && !err.message.startsWith(where)) {
          throw new TemplateError(`${where}: ${err.message}`, { cause: err });
        }
        throw err;
      }
    }
    const first = this.operand(head, dot, scope, where, false);
    if (typeof first === 'function') return (first as Func)(...args());
    if (rest.length > 0 || piped !== null) {
      throw new TemplateError(`${where}: ${kindOf(first)} is not a function and takes no arguments`);
    }
    return first;
  }

  private operand(op: Operand, dot: Value, scope: Scope, where: string, asArg: boolean): Value {
    switch (op.kind) {
      case 'literal':
        return op.value;
      case 'pipe':
        return this.pipeline(op.pipe, dot, scope, where);
      case 'ident':
        if (!asArg) throw new TemplateError(`${where}: ${op.name} used as a value`);
        return this.command([op], dot, scope, where, null);
      case 'field': {
        let v = op.base === '.' ? dot : scope.get(op.base, where);
        let path = op.base === '.' ? '' : op.base;
        for (const name of op.path) {
          if (v === null || v === undefined) {
            throw new TemplateError(`${where}: nil pointer evaluating ${path}.${name}`);
          }
          if (!isMap(v) && typeof v !== 'object') {
            throw new TemplateError(`${where}: can't evaluate field ${name} in a ${kindOf(v)} (${path})`);
          }
          const obj = v as Record<string | symbol, Value>;
          if (obj[STRUCT] === true && !(name in obj)) {
            throw new TemplateError(`${where}: can't evaluate field ${name} (${path})`);
          }
          const next = Object.hasOwn(obj, name) ? obj[name] : undefined;
          v = typeof next === 'function' ? (next as Func).bind(obj) : next;
          path = `${path}.${name}`;
        }
        return v;
      }
    }
  }
}
