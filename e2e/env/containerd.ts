// A real containerd with a private root, state dir and socket (see ../shared/TESTENV.md), for
// tests and the sandbox. Registry hosts are configured per test under DIR/certs.d.
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { startService, waitReady, type Service } from './process.js';

export interface Containerd {
  dir: string;
  socketPath: string;
  /** unix:///… form, as kubelet's --container-runtime-endpoint takes it. */
  address: string;
  namespace: 'k8s.io';
  log: string;
  stop(): Promise<void>;
  /** Stops and starts it again on the same state (a containerd restart on a node). */
  restart(): Promise<void>;
}

function config(dir: string, snapshotter: string): string {
  return `version = 2
root = "${dir}/root"
state = "${dir}/state"
[grpc]
  address = "${dir}/ctd.sock"
[ttrpc]
  address = "${dir}/ctd.sock.ttrpc"
[debug]
  address = "${dir}/ctd-debug.sock"
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "${dir}/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.6"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "${snapshotter}"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "${dir}/cni-net.d"
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "${dir}/certs.d"
`;
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** `dir` must be short: unix socket paths are limited to 107 bytes. */
export async function startContainerd(dir: string, snapshotter = 'overlayfs'): Promise<Containerd> {
  mkdirSync(join(dir, 'certs.d'), { recursive: true });
  const configPath = join(dir, 'config.toml');
  writeFileSync(configPath, config(dir, snapshotter));
  const socketPath = join(dir, 'ctd.sock');
  if (socketPath.length > 100)
    throw new Error(`containerd socket path too long for a unix socket: ${socketPath}`);
  const log = join(dir, 'containerd.log');
  let svc: Service;
  const start = async () => {
    svc = startService('containerd', ['--config', configPath, '--log-level', 'info'], log);
    await waitReady('containerd', svc, () => socketAnswers(socketPath));
  };
  await start();
  return {
    dir,
    socketPath,
    address: `unix://${socketPath}`,
    namespace: 'k8s.io',
    log,
    stop: () => svc.stop(),
    restart: async () => {
      await svc.stop();
      await start();
    },
  };
}

/** Points containerd's CRI at a plain-HTTP registry for pulls of `name` (a host[:port]). */
export function configureRegistryHost(ctd: Containerd, name: string, upstream: string): void {
  const d = join(ctd.dir, 'certs.d', name);
  mkdirSync(d, { recursive: true });
  writeFileSync(
    join(d, 'hosts.toml'),
    `server = "http://${upstream}"\n[host."http://${upstream}"]\n  capabilities = ["pull", "resolve"]\n  skip_verify = true\n`,
  );
}
