// The control-plane stand-in's public API (see README.md): start it, use its store in-process,
// and the pieces later parts build on (admission hook types, patch helpers, selectors, types).
export { startControlPlane, type ControlPlane, type ControlPlaneOptions } from './control-plane.js';
export {
  Store,
  TypedResource,
  timestamp,
  type AdmissionInput,
  type AdmissionResult,
  type AdmitHook,
  type DeleteOptions,
  type ListOptions,
  type ObjectKey,
  type ObjectList,
  type StoreChange,
  type StoreOptions,
  type WatchOptions,
  type Watcher,
  type WriteOptions,
} from './store.js';
export { ApiError } from './api-error.js';
export {
  createFaults,
  faultError,
  type FaultHit,
  type FaultRequest,
  type FaultRule,
  type FaultStatus,
  type Faults,
} from './faults.js';
export {
  BUILTIN_RESOURCES,
  DEPLOYMENTS,
  EVENTS,
  MUTATING_WEBHOOK_CONFIGURATIONS,
  NAMESPACES,
  NODES,
  PODS,
  REPLICASETS,
  apiVersionOf,
  defaultPodSpec,
  type ResourceRef,
  type ResourceType,
} from './resources.js';
export {
  PATCH_TYPES,
  applyJsonPatch,
  applyMergePatch,
  applyStrategicMergePatch,
  type PatchType,
} from './patch.js';
export { labelSelectorFromObject, matchLabels, parseLabelSelector, type LabelSelector } from './selectors.js';
export { kubeconfigYaml, writeKubeconfig } from './kubeconfig.js';
export { humanDuration, podRow, type TableConverter } from './table.js';
export type * from './types.js';
