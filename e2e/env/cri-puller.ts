// PullImage over the CRI, exactly as a kubelet pulls. Kept out of node-agent/: the agent
// never changes containerd's state; the tests and the kubelet stand-in do.
import { CriImageClient } from '../../test-support/cri-client.js';

export class CriPuller extends CriImageClient {
  /** Pulls `ref`; resolves with the image id (sha256:…) when the image is present. */
  async pullImage(ref: string, timeoutMs = 10 * 60_000): Promise<string> {
    const res = await this.call<{ image_ref: string }>('PullImage', { image: { image: ref } }, timeoutMs);
    return res.image_ref;
  }
}
