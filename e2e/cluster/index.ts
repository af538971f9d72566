// The real control plane for tests and the sandbox (see README.md): start it, add a real kubelet,
// make node-bound ServiceAccount tokens, render the chart with the real helm.
export { startCluster, apiGet, type Cluster, type ClusterOptions } from './cluster.js';
export { startKubelet, type Kubelet, type KubeletOptions } from './kubelet.js';
export {
  nodeBoundToken,
  jwtPayload,
  NODE_NAME_EXTRA,
  type KubernetesClaims,
  type NodeBoundToken,
  type NodeBoundTokenOptions,
} from './token.js';
export { helmTemplate, type HelmTemplateOptions } from './helm.js';
export {
  kubeBinDir,
  requireBinaries,
  MissingBinaryError,
  DEFAULT_KUBE_VERSION,
  type KubeBinary,
} from './binaries.js';
export { ComponentError, type Component } from './component.js';
export {
  clusterKubeconfigYaml,
  writeClusterKubeconfig,
  type ClusterKubeconfig,
  type KubeconfigCredentials,
} from './kubeconfig.js';
export { makePki, type Pki, type CertPair, type ClientIdentity } from './pki.js';
export { providePauseImage, pauseBinary, SANDBOX_IMAGE } from './pause-image.js';
