// The certificates and keys a control plane on loopback needs, made with openssl:
//   - one CA (certs/make-certs.sh) that signs every serving and client certificate and is the
//     API server's --client-ca-file (envtest does the same: one CA is enough on one machine);
//   - the API server's serving certificate (make-certs.sh with --service kubernetes
//     --namespace default: the in-cluster names, plus 127.0.0.1 and localhost);
//   - client certificates whose subject is the identity: CN = user, O = groups;
//   - the ServiceAccount token signing key pair (EC P-256, ES256 tokens).
// Keys are mode 0600 in a directory of the caller's; nothing here is meant to outlive a test.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const MAKE_CERTS = fileURLToPath(new URL('../../certs/make-certs.sh', import.meta.url));

/** A certificate and its key, as file paths. */
export interface CertPair {
  cert: string;
  key: string;
}

/** An identity for a client certificate: user name and groups, as the API server reads them. */
export interface ClientIdentity {
  /** Becomes the user name (certificate CN), e.g. `system:kube-scheduler`. */
  user: string;
  /** Become the groups (certificate O, one each), e.g. `['system:masters']`. */
  groups?: string[];
}

/** What makePki() wrote. */
export interface Pki {
  dir: string;
  /** The CA certificate (PEM path): serving CA for clients and --client-ca-file for servers. */
  caCert: string;
  caKey: string;
  /** kube-apiserver's serving certificate (SANs: kubernetes.default.svc…, 127.0.0.1, localhost, service IP). */
  apiserver: CertPair;
  /** ServiceAccount token keys: private key (signing) and public key (verification). */
  serviceAccount: { privateKey: string; publicKey: string };
  /** Issues a client certificate for `id`, named `name` (files NAME.crt/NAME.key). */
  client(name: string, id: ClientIdentity): Promise<CertPair>;
  /** Issues a serving certificate for 127.0.0.1/localhost plus `sans`, signed by the CA. */
  serving(name: string, sans?: string[]): Promise<CertPair>;
}

async function openssl(args: string[]): Promise<void> {
  await run('openssl', args).catch((err: unknown) => {
    throw new Error(`openssl ${args[0] ?? ''} failed (is openssl installed?)`, { cause: err });
  });
}

async function makeCerts(args: string[]): Promise<void> {
  await run('bash', [MAKE_CERTS, ...args]).catch((err: unknown) => {
    throw new Error(`certs/make-certs.sh ${args.join(' ')} failed`, { cause: err });
  });
}

/**
 * Makes the CA, the API server's serving certificate and the ServiceAccount keys in `dir`.
 * `serviceIp` is the first address of --service-cluster-ip-range (the `kubernetes` Service),
 * put in the serving certificate as a real cluster has it.
 */
export async function makePki(dir: string, serviceIp: string): Promise<Pki> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const apiDir = join(dir, 'apiserver');
  await makeCerts([
    '--out',
    apiDir,
    '--service',
    'kubernetes',
    '--namespace',
    'default',
    '--san',
    'IP:127.0.0.1',
    '--san',
    'DNS:localhost',
    '--san',
    `IP:${serviceIp}`,
  ]);
  const caCert = join(apiDir, 'ca.crt');
  const caKey = join(apiDir, 'ca.key');
  const saKey = join(dir, 'sa.key');
  const saPub = join(dir, 'sa.pub');
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', saKey]);
  await openssl(['pkey', '-in', saKey, '-pubout', '-out', saPub]);

  const client = async (name: string, id: ClientIdentity): Promise<CertPair> => {
    const key = join(dir, `${name}.key`);
    const csr = join(dir, `${name}.csr`);
    const cert = join(dir, `${name}.crt`);
    const ext = join(dir, `${name}.ext`);
    // openssl's -subj wants / and = escaped inside values; identities here never hold them.
    const subject = [...(id.groups ?? []).map((g) => `/O=${g}`), `/CN=${id.user}`].join('');
    writeFileSync(
      ext,
      'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n',
    );
    await openssl([
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      csr,
      '-subj',
      subject,
    ]);
    await openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      caCert,
      '-CAkey',
      caKey,
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      '-days',
      '30',
      '-out',
      cert,
      '-extfile',
      ext,
    ]);
    return { cert, key };
  };

  const serving = async (name: string, sans: string[] = []): Promise<CertPair> => {
    const out = join(dir, name);
    const sanArgs = ['IP:127.0.0.1', 'DNS:localhost', ...sans].flatMap((s) => ['--san', s]);
    await makeCerts([
      '--out',
      out,
      '--ca-dir',
      apiDir,
      '--service',
      name,
      '--namespace',
      'kube-system',
      ...sanArgs,
    ]);
    return { cert: join(out, 'tls.crt'), key: join(out, 'tls.key') };
  };

  return {
    dir,
    caCert,
    caKey,
    apiserver: { cert: join(apiDir, 'tls.crt'), key: join(apiDir, 'tls.key') },
    serviceAccount: { privateKey: saKey, publicKey: saPub },
    client,
    serving,
  };
}
