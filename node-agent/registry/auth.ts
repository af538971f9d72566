// The registry's anonymous token flow (the distribution spec's token authentication, as
// containerd's docker authorizer performs it without credentials): read the Bearer challenge
// of a 401, build the token request, read the token out of the answer.
//
// Pure.

/** One challenge of a WWW-Authenticate header: scheme in lower case, parameter names in lower case. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a WWW-Authenticate header (RFC 9110 §11.6.1), which may hold several challenges:
 * `Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull"`.
 * Tolerant: a malformed tail ends the parse and what was read is returned; never throws.
 */
export function parseChallenges(header: string | undefined): Challenge[] {
  const out: Challenge[] = [];
  if (typeof header !== 'string' || header.length > 16 * 1024) return out;
  const s = header;
  let i = 0;
  const skipSpace = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < s.length && /[!#$%&'*+.^_`|~0-9A-Za-z/-]/.test(s[i] ?? '')) i++;
    return s.slice(start, i);
  };
  let current: Challenge | null = null;
  while (i < s.length) {
    skipSpace();
    const token = readToken();
    if (token === '') break;
    let j = i;
    while (j < s.length && (s[j] === ' ' || s[j] === '\t')) j++;
    if (s[j] === '=' && current !== null && s[j + 1] !== '=') {
      // name=value of the current challenge.
      i = j + 1;
      while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i] ?? '';
          i++;
        }
        if (s[i] !== '"') break; // unterminated quote
        i++;
      } else {
        value = readToken();
      }
      current.params[token.toLowerCase()] = value;
    } else {
      // A new challenge: scheme, then (optionally) a token68 we have no use for.
      current = { scheme: token.toLowerCase(), params: {} };
      out.push(current);
      i = j;
      if (s[i] !== ',' && i < s.length && /[A-Za-z0-9]/.test(s[i] ?? '')) {
        const save = i;
        const t68 = readToken();
        let k = i;
        while (k < s.length && s[k] === '=') k++;
        if (t68 !== '' && s[i] === '=' && (k >= s.length || s[k] === ',' || s[k] === ' ')) i = k;
        else i = save;
      }
    }
  }
  return out;
}

/** The Bearer challenge of a 401, if it offers one with a usable http(s) realm. */
export function bearerChallenge(
  header: string | undefined,
): { realm: URL; service: string; scope: string } | null {
  for (const c of parseChallenges(header)) {
    if (c.scheme !== 'bearer') continue;
    const realm = c.params.realm;
    if (realm === undefined) continue;
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      continue;
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') continue;
    return { realm: url, service: c.params.service ?? '', scope: c.params.scope ?? '' };
  }
  return null;
}

/**
 * The URL of an anonymous token request: the realm with `service` and one `scope` per scope
 * asked (`repository:<path>:pull`, plus the challenge's own when it names another), no credentials.
 */
export function tokenUrl(challenge: { realm: URL; service: string; scope: string }, repoPath: string): URL {
  const url = new URL(challenge.realm.href);
  if (challenge.service !== '') url.searchParams.set('service', challenge.service);
  const wanted = `repository:${repoPath}:pull`;
  url.searchParams.append('scope', wanted);
  for (const s of challenge.scope.split(' ')) {
    if (s !== '' && s !== wanted) url.searchParams.append('scope', s);
  }
  return url;
}

/**
 * Reads a token answer: `{"token": "...", "expires_in": 300}` (or `access_token`). Returns the
 * token and its lifetime in seconds (the spec's default of 60 when unstated or not positive);
 * null when the body holds no token.
 */
export function parseTokenResponse(body: Buffer): { token: string; expiresInSeconds: number } | null {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof doc !== 'object' || doc === null) return null;
  const o = doc as Record<string, unknown>;
  const token =
    typeof o.token === 'string' && o.token !== ''
      ? o.token
      : typeof o.access_token === 'string' && o.access_token !== ''
        ? o.access_token
        : null;
  if (token === null || !/^[\x21-\x7e]+$/.test(token)) return null;
  const exp =
    typeof o.expires_in === 'number' && Number.isFinite(o.expires_in) && o.expires_in > 0 ? o.expires_in : 60;
  return { token, expiresInSeconds: exp };
}
