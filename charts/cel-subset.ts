// A small evaluator for the subset of CEL that the chart's admission expressions use, so tests
// can check what those expressions decide (matchConditions, policy variables, validations,
// JSONPatch and apply-configuration mutations) against the webhook's own decisions. It is not
// the Kubernetes CEL environment: no type checking, no cost limits, only the operators, macros
// and functions below. Errors follow CEL where the chart relies on them: reading a missing
// field or key is an error, and `a || b` / `a && b` absorb an error on one side when the other
// side decides the result.
//
// Supported: literals (string, int, bool, null, lists, maps), `!` `-` `&&` `||` `?:`
// `== != < <= > >=` `in` `+`, field access, indexing, `has(a.b)`, `size(x)`,
// `list.exists(v, p)`, `list.all(v, p)`, `jsonpatch.escapeKey(s)`, and object construction
// `Type.path{field: value}` (the result is a plain object).

export class CelError extends Error {}

type Value = unknown;
type Env = Record<string, Value>;

interface Tok {
  t: 'str' | 'num' | 'id' | 'op';
  v: string;
}

const LEX =
  /\s+|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_]*|&&|\|\||==|!=|<=|>=|[!?:.,()[\]{}<>+-]/y;

function lex(src: string): Tok[] {
  const out: Tok[] = [];
  LEX.lastIndex = 0;
  while (LEX.lastIndex < src.length) {
    const at = LEX.lastIndex;
    const m = LEX.exec(src);
    if (m === null) throw new CelError(`cannot read "${src.slice(at, at + 20)}"`);
    const s = m[0];
    if (/^\s+$/.test(s)) continue;
    if (s.startsWith("'") || s.startsWith('"')) {
      const body = s.slice(1, -1).replace(/\\(.)/g, (_m, c: string) => ({ n: '\n', t: '\t' })[c] ?? c);
      out.push({ t: 'str', v: body });
    } else if (/^\d/.test(s)) out.push({ t: 'num', v: s });
    else if (/^[A-Za-z_]/.test(s)) out.push({ t: 'id', v: s });
    else out.push({ t: 'op', v: s });
  }
  return out;
}

type Expr =
  | { k: 'lit'; v: Value }
  | { k: 'id'; name: string }
  | { k: 'sel'; obj: Expr; field: string }
  | { k: 'idx'; obj: Expr; index: Expr }
  | { k: 'call'; fn: string; target: Expr | null; args: Expr[] }
  | { k: 'un'; op: string; e: Expr }
  | { k: 'bin'; op: string; l: Expr; r: Expr }
  | { k: 'cond'; c: Expr; a: Expr; b: Expr }
  | { k: 'list'; items: Expr[] }
  | { k: 'map'; entries: [Expr, Expr][] }
  | { k: 'obj'; type: string; fields: [string, Expr][] };

class Parser {
  private i = 0;
  constructor(private readonly toks: Tok[]) {}

  parse(): Expr {
    const e = this.expr();
    if (this.i !== this.toks.length) throw new CelError(`unexpected "${this.peek()?.v ?? ''}"`);
    return e;
  }
  private peek(): Tok | undefined {
    return this.toks[this.i];
  }
  private isOp(v: string): boolean {
    const t = this.peek();
    return t?.t === 'op' && t.v === v;
  }
  private eat(v: string): void {
    if (!this.isOp(v)) throw new CelError(`expected "${v}", got "${this.peek()?.v ?? 'end'}"`);
    this.i++;
  }
  private expr(): Expr {
    const c = this.or();
    if (!this.isOp('?')) return c;
    this.i++;
    const a = this.or();
    this.eat(':');
    const b = this.expr();
    return { k: 'cond', c, a, b };
  }
  private or(): Expr {
    let l = this.and();
    while (this.isOp('||')) {
      this.i++;
      l = { k: 'bin', op: '||', l, r: this.and() };
    }
    return l;
  }
  private and(): Expr {
    let l = this.rel();
    while (this.isOp('&&')) {
      this.i++;
      l = { k: 'bin', op: '&&', l, r: this.rel() };
    }
    return l;
  }
  private rel(): Expr {
    const l = this.add();
    const t = this.peek();
    if (
      (t?.t === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(t.v)) ||
      (t?.t === 'id' && t.v === 'in')
    ) {
      this.i++;
      return { k: 'bin', op: t.v, l, r: this.add() };
    }
    return l;
  }
  private add(): Expr {
    let l = this.unary();
    while (this.isOp('+') || this.isOp('-')) {
      const op = this.peek()?.v ?? '+';
      this.i++;
      l = { k: 'bin', op, l, r: this.unary() };
    }
    return l;
  }
  private unary(): Expr {
    if (this.isOp('!') || this.isOp('-')) {
      const op = this.peek()?.v ?? '!';
      this.i++;
      return { k: 'un', op, e: this.unary() };
    }
    return this.member();
  }
  private args(close: string): Expr[] {
    const out: Expr[] = [];
    while (!this.isOp(close)) {
      out.push(this.expr());
      if (!this.isOp(close)) this.eat(',');
    }
    this.eat(close);
    return out;
  }
  private member(): Expr {
    let e = this.primary();
    for (;;) {
      if (this.isOp('.')) {
        this.i++;
        const name = this.peek();
        if (name?.t !== 'id') throw new CelError('expected a field name after "."');
        this.i++;
        if (this.isOp('(')) {
          this.i++;
          e = { k: 'call', fn: name.v, target: e, args: this.args(')') };
        } else e = { k: 'sel', obj: e, field: name.v };
      } else if (this.isOp('[')) {
        this.i++;
        const index = this.expr();
        this.eat(']');
        e = { k: 'idx', obj: e, index };
      } else if (this.isOp('{') && isTypeName(e)) {
        this.i++;
        const fields: [string, Expr][] = [];
        while (!this.isOp('}')) {
          const f = this.peek();
          if (f?.t !== 'id') throw new CelError('expected a field name in an object');
          this.i++;
          this.eat(':');
          fields.push([f.v, this.expr()]);
          if (!this.isOp('}')) this.eat(',');
        }
        this.eat('}');
        e = { k: 'obj', type: typeName(e), fields };
      } else return e;
    }
  }
  private primary(): Expr {
    const t = this.peek();
    if (t === undefined) throw new CelError('unexpected end of expression');
    this.i++;
    if (t.t === 'str') return { k: 'lit', v: t.v };
    if (t.t === 'num') return { k: 'lit', v: Number(t.v) };
    if (t.t === 'id') {
      if (t.v === 'true' || t.v === 'false') return { k: 'lit', v: t.v === 'true' };
      if (t.v === 'null') return { k: 'lit', v: null };
      if (this.isOp('(')) {
        this.i++;
        return { k: 'call', fn: t.v, target: null, args: this.args(')') };
      }
      return { k: 'id', name: t.v };
    }
    if (t.v === '(') {
      const e = this.expr();
      this.eat(')');
      return e;
    }
    if (t.v === '[') return { k: 'list', items: this.args(']') };
    if (t.v === '{') {
      const entries: [Expr, Expr][] = [];
      while (!this.isOp('}')) {
        const key = this.expr();
        this.eat(':');
        entries.push([key, this.expr()]);
        if (!this.isOp('}')) this.eat(',');
      }
      this.eat('}');
      return { k: 'map', entries };
    }
    throw new CelError(`unexpected "${t.v}"`);
  }
}

/** Object construction only on names that start with a capital (JSONPatch, Object.spec...). */
function isTypeName(e: Expr): boolean {
  if (e.k === 'id') return /^[A-Z]/.test(e.name);
  return e.k === 'sel' && isTypeName(e.obj);
}

function typeName(e: Expr): string {
  if (e.k === 'id') return e.name;
  if (e.k === 'sel') return `${typeName(e.obj)}.${e.field}`;
  throw new CelError('not a type name');
}

function isMap(v: Value): v is Record<string, Value> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bool(v: Value, what: string): boolean {
  if (typeof v !== 'boolean') throw new CelError(`${what} needs a bool, got ${JSON.stringify(v)}`);
  return v;
}

function equal(a: Value, b: Value): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function evaluate(e: Expr, env: Env): Value {
  switch (e.k) {
    case 'lit':
      return e.v;
    case 'id':
      if (!(e.name in env)) throw new CelError(`undeclared reference to "${e.name}"`);
      return env[e.name];
    case 'sel': {
      const o = evaluate(e.obj, env);
      if (!isMap(o)) throw new CelError(`no such field "${e.field}" (not an object)`);
      if (!Object.hasOwn(o, e.field)) throw new CelError(`no such key: ${e.field}`);
      return o[e.field];
    }
    case 'idx': {
      const o = evaluate(e.obj, env);
      const i = evaluate(e.index, env);
      if (Array.isArray(o)) {
        if (typeof i !== 'number' || i < 0 || i >= o.length)
          throw new CelError(`index out of range: ${String(i)}`);
        return o[i] as Value;
      }
      if (isMap(o) && typeof i === 'string') {
        if (!Object.hasOwn(o, i)) throw new CelError(`no such key: ${i}`);
        return o[i];
      }
      throw new CelError('index on a value that is neither a list nor a map');
    }
    case 'un': {
      const v = evaluate(e.e, env);
      if (e.op === '!') return !bool(v, '!');
      if (typeof v !== 'number') throw new CelError('- needs a number');
      return -v;
    }
    case 'cond':
      return bool(evaluate(e.c, env), '?:') ? evaluate(e.a, env) : evaluate(e.b, env);
    case 'list':
      return e.items.map((x) => evaluate(x, env));
    case 'map': {
      const out: Record<string, Value> = {};
      for (const [k, v] of e.entries) {
        const key = evaluate(k, env);
        if (typeof key !== 'string') throw new CelError('map keys must be strings here');
        out[key] = evaluate(v, env);
      }
      return out;
    }
    case 'obj': {
      const out: Record<string, Value> = {};
      for (const [k, v] of e.fields) out[k] = evaluate(v, env);
      return out;
    }
    case 'bin':
      return binary(e.op, e.l, e.r, env);
    case 'call':
      return call(e, env);
  }
}

function binary(op: string, l: Expr, r: Expr, env: Env): Value {
  if (op === '&&' || op === '||') {
    // CEL's commutative logic: an error on one side is absorbed when the other side decides.
    const decisive = op === '||';
    let leftErr: CelError | null = null;
    try {
      if (bool(evaluate(l, env), op) === decisive) return decisive;
    } catch (err) {
      if (!(err instanceof CelError)) throw err;
      leftErr = err;
    }
    const right = bool(evaluate(r, env), op);
    if (right === decisive) return decisive;
    if (leftErr !== null) throw leftErr;
    return !decisive;
  }
  const a = evaluate(l, env);
  const b = evaluate(r, env);
  switch (op) {
    case '==':
      return equal(a, b);
    case '!=':
      return !equal(a, b);
    case 'in':
      if (Array.isArray(b)) return b.some((x) => equal(x, a));
      if (isMap(b) && typeof a === 'string') return Object.hasOwn(b, a);
      throw new CelError('"in" needs a list or a map on its right');
    case '+':
      if (typeof a === 'string' && typeof b === 'string') return a + b;
      if (typeof a === 'number' && typeof b === 'number') return a + b;
      if (Array.isArray(a) && Array.isArray(b)) return [...(a as Value[]), ...(b as Value[])];
      throw new CelError('+ needs two strings, numbers or lists');
    case '-':
      if (typeof a === 'number' && typeof b === 'number') return a - b;
      throw new CelError('- needs numbers');
    default: {
      if (typeof a !== typeof b || (typeof a !== 'number' && typeof a !== 'string')) {
        throw new CelError(`${op} needs two numbers or two strings`);
      }
      const x = a;
      const y = b as typeof a;
      return op === '<' ? x < y : op === '<=' ? x <= y : op === '>' ? x > y : x >= y;
    }
  }
}

function call(e: Extract<Expr, { k: 'call' }>, env: Env): Value {
  if (e.target === null) {
    if (e.fn === 'has') {
      const [arg] = e.args;
      if (arg?.k !== 'sel' || e.args.length !== 1) throw new CelError('has() needs one field selection');
      const o = evaluate(arg.obj, env);
      if (!isMap(o)) throw new CelError(`has(): no such field "${arg.field}" (not an object)`);
      return Object.hasOwn(o, arg.field) && o[arg.field] !== null;
    }
    if (e.fn === 'size') {
      const v = evaluate(e.args[0] ?? { k: 'lit', v: null }, env);
      if (typeof v === 'string' || Array.isArray(v)) return v.length;
      if (isMap(v)) return Object.keys(v).length;
      throw new CelError('size() needs a string, list or map');
    }
    throw new CelError(`function ${e.fn} is not supported`);
  }
  if (e.fn === 'exists' || e.fn === 'all') {
    const [v, pred] = e.args;
    if (v?.k !== 'id' || pred === undefined) throw new CelError(`${e.fn}() needs a variable and a predicate`);
    const list = evaluate(e.target, env);
    if (!Array.isArray(list)) throw new CelError(`${e.fn}() needs a list`);
    const results = list.map((x: unknown) => bool(evaluate(pred, { ...env, [v.name]: x }), e.fn));
    return e.fn === 'exists' ? results.some(Boolean) : results.every(Boolean);
  }
  if (e.fn === 'escapeKey' && e.target.k === 'id' && e.target.name === 'jsonpatch') {
    const s = evaluate(e.args[0] ?? { k: 'lit', v: null }, env);
    if (typeof s !== 'string') throw new CelError('escapeKey needs a string');
    return s.replaceAll('~', '~0').replaceAll('/', '~1');
  }
  throw new CelError(`method ${e.fn} is not supported`);
}

/** Parses a CEL expression of the subset; throws CelError on anything outside it. */
export function parseCel(src: string): Expr {
  return new Parser(lex(src)).parse();
}

/** Evaluates a CEL expression with the given variables (object, oldObject, request, variables...). */
export function evalCel(src: string, env: Env): Value {
  return evaluate(parseCel(src), env);
}
