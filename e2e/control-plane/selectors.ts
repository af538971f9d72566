// Label and field selectors, parsed and matched as the API server does it:
//   labels: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`,
//           comma-separated, all must hold; `!=` and `notin` also match objects without the key;
//   fields: `f=v`, `f==v`, `f!=v`, comma-separated, `\` escapes `,`, `=`, `!` and `\` in values.
// Bad syntax throws a 400 BadRequest ApiError.
import { badRequest } from './api-error.js';
import { labelKeyError, labelValueError } from './validation.js';

export type LabelOperator = 'in' | 'notin' | 'exists' | 'doesnotexist' | 'gt' | 'lt';

export interface LabelRequirement {
  key: string;
  operator: LabelOperator;
  values: string[];
}

/** A parsed label selector: every requirement must hold. An empty list matches everything. */
export type LabelSelector = LabelRequirement[];

function parseError(selector: string, detail: string): Error {
  return badRequest(`unable to parse requirement: ${detail} (in label selector "${selector}")`);
}

/** Splits on commas outside parentheses. */
function splitTerms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

function checkKey(selector: string, key: string): void {
  const err = labelKeyError(key);
  if (err !== null) throw parseError(selector, `key ${JSON.stringify(key)}: ${err}`);
}

function checkValue(selector: string, value: string): void {
  const err = labelValueError(value);
  if (err !== null) throw parseError(selector, `value ${JSON.stringify(value)}: ${err}`);
}

const SET_TERM = /^([^\s!=<>(),]+)\s+(in|notin)\s*\(([^()]*)\)$/;
const BINARY_TERM = /^([^\s!=<>(),]+)\s*(==|=|!=|>|<)\s*([^\s!=<>(),]*)$/;

/** Parses a label selector string (the `labelSelector` query parameter). */
export function parseLabelSelector(selector: string): LabelSelector {
  if (selector.trim() === '') return [];
  return splitTerms(selector).map((raw): LabelRequirement => {
    const term = raw.trim();
    if (term === '') throw parseError(selector, 'found an empty requirement');
    const set = SET_TERM.exec(term);
    if (set !== null) {
      const [, key = '', op, list = ''] = set;
      checkKey(selector, key);
      const values = list.split(',').map((v) => v.trim());
      if (values.length === 0 || (values.length === 1 && values[0] === '')) {
        throw parseError(selector, `for '${op ?? ''}' operator, values set can't be empty`);
      }
      values.forEach((v) => checkValue(selector, v));
      return { key, operator: op === 'in' ? 'in' : 'notin', values };
    }
    const bin = BINARY_TERM.exec(term);
    if (bin !== null) {
      const [, key = '', op = '', value = ''] = bin;
      checkKey(selector, key);
      if (op === '>' || op === '<') {
        if (!/^-?\d+$/.test(value))
          throw parseError(selector, `for '${op}' operator, the value must be an integer`);
        return { key, operator: op === '>' ? 'gt' : 'lt', values: [value] };
      }
      checkValue(selector, value);
      return { key, operator: op === '!=' ? 'notin' : 'in', values: [value] };
    }
    if (term.startsWith('!')) {
      const key = term.slice(1).trim();
      checkKey(selector, key);
      return { key, operator: 'doesnotexist', values: [] };
    }
    if (/^[^\s!=<>(),]+$/.test(term)) {
      checkKey(selector, term);
      return { key: term, operator: 'exists', values: [] };
    }
    throw parseError(selector, `cannot understand ${JSON.stringify(term)}`);
  });
}

/** A selector from its structured form (`spec.selector` of a Deployment). */
export function labelSelectorFromObject(sel: {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}): LabelSelector {
  const out: LabelSelector = Object.entries(sel.matchLabels ?? {}).map(([key, v]) => ({
    key,
    operator: 'in',
    values: [v],
  }));
  for (const e of sel.matchExpressions ?? []) {
    const op = e.operator.toLowerCase();
    const operator: LabelOperator =
      op === 'in' ? 'in' : op === 'notin' ? 'notin' : op === 'exists' ? 'exists' : 'doesnotexist';
    if (!['in', 'notin', 'exists', 'doesnotexist'].includes(op)) {
      throw badRequest(`unknown label selector operator ${JSON.stringify(e.operator)}`);
    }
    out.push({ key: e.key, operator, values: e.values ?? [] });
  }
  return out;
}

/** Whether labels satisfy every requirement. */
export function matchLabels(selector: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return selector.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = has ? l[r.key] : undefined;
    switch (r.operator) {
      case 'in':
        return v !== undefined && r.values.includes(v);
      case 'notin':
        return v === undefined || !r.values.includes(v);
      case 'exists':
        return has;
      case 'doesnotexist':
        return !has;
      case 'gt':
      case 'lt': {
        if (v === undefined || !/^-?\d+$/.test(v)) return false;
        const a = Number(v);
        const b = Number(r.values[0]);
        return r.operator === 'gt' ? a > b : a < b;
      }
    }
  });
}

export interface FieldRequirement {
  field: string;
  /** `=` (also written `==`) or `!=`. */
  operator: '=' | '!=';
  value: string;
}

/** Splits on unescaped commas and unescapes `\,`, `\=`, `\!`, `\\` afterwards. */
function splitEscaped(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i] ?? '';
    if (ch === '\\' && i + 1 < s.length) {
      cur += ch + (s[i + 1] ?? '');
      i++;
    } else if (ch === sep) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

function unescape(s: string): string {
  return s.replace(/\\(.)/g, '$1');
}

/** Parses a field selector string (the `fieldSelector` query parameter). */
export function parseFieldSelector(selector: string): FieldRequirement[] {
  if (selector.trim() === '') return [];
  return splitEscaped(selector, ',').map((term) => {
    // Find the first unescaped operator.
    for (let i = 0; i < term.length; i++) {
      const ch = term[i];
      if (ch === '\\') {
        i++;
        continue;
      }
      if (ch === '!' && term[i + 1] === '=') {
        return { field: term.slice(0, i).trim(), operator: '!=', value: unescape(term.slice(i + 2)) };
      }
      if (ch === '=') {
        const skip = term[i + 1] === '=' ? 2 : 1;
        return { field: term.slice(0, i).trim(), operator: '=', value: unescape(term.slice(i + skip)) };
      }
    }
    throw badRequest(`invalid selector: '${selector}'; can't understand '${term}'`);
  });
}

/**
 * Whether an object's fields satisfy every requirement. `get` returns a field's value, or
 * null for a field the resource does not support (a 400, as on the API server).
 */
export function matchFields(reqs: FieldRequirement[], get: (field: string) => string | null): boolean {
  return reqs.every((r) => {
    const v = get(r.field);
    if (v === null) throw badRequest(`field label not supported: ${r.field}`);
    return r.operator === '=' ? v === r.value : v !== r.value;
  });
}
