// Test support, not product code: the CRI image service (runtime.v1 ImageService), as the
// kubelet calls it — the tests' and the sandbox's way to pull an image exactly as a kubelet does
// (e2e/env/cri-puller.ts adds PullImage), and to ask whether one is present and how large. The
// node agent never calls the CRI: it only reads containerd (node-agent/containerd/).
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { PulltraceError } from '../common/errors.js';
import { grpcTarget, PROTO_DIR, service, toSafeNumber } from '../node-agent/containerd/proto.js';

const CRI_PROTO_DIR = fileURLToPath(new URL('./proto/', import.meta.url));
let ctor: grpc.ServiceClientConstructor | null = null;

export interface CriImage {
  id: string;
  size: number;
  repoTags: string[];
  repoDigests: string[];
}

interface RawImage {
  id: string;
  size: string;
  repo_tags: string[];
  repo_digests: string[];
}

type Unary = (
  req: unknown,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: unknown) => void,
) => void;

export class CriImageClient {
  protected readonly client: grpc.Client;

  constructor(
    address: string,
    protected readonly callTimeoutMs = 10_000,
  ) {
    ctor ??= service('cri.proto', ['runtime', 'v1', 'ImageService'], [CRI_PROTO_DIR, PROTO_DIR]);
    this.client = new ctor(grpcTarget(address), grpc.credentials.createInsecure());
  }

  protected call<T>(method: string, req: unknown, timeoutMs = this.callTimeoutMs): Promise<T> {
    const fn = (this.client as unknown as Record<string, Unary>)[method];
    if (fn === undefined) return Promise.reject(new Error(`no CRI method ${method}`));
    return new Promise((resolve, reject) => {
      fn.call(this.client, req, { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err === null) {
          resolve(res as T);
          return;
        }
        const code =
          err.code === grpc.status.UNAVAILABLE ? 'PT_CONTAINERD_UNAVAILABLE' : 'PT_CONTAINERD_CALL_FAILED';
        reject(new PulltraceError(code, `CRI ${method}: ${err.details}`, { cause: err }));
      });
    });
  }

  /** The image as the node has it, or null when it is not present. */
  async imageStatus(ref: string): Promise<CriImage | null> {
    const res = await this.call<{ image: RawImage | null }>('ImageStatus', { image: { image: ref } });
    return res.image === null || res.image.id === '' ? null : convert(res.image);
  }

  async listImages(): Promise<CriImage[]> {
    const res = await this.call<{ images: RawImage[] }>('ListImages', {});
    return res.images.map(convert);
  }

  close(): void {
    this.client.close();
  }
}

function convert(i: RawImage): CriImage {
  return {
    id: i.id,
    size: toSafeNumber(i.size, `size of ${i.id}`),
    repoTags: i.repo_tags,
    repoDigests: i.repo_digests,
  };
}
