export { Datastore } from "./datastore.js";
export type { DatastoreDeps, DatastoreOptions } from "./datastore.js";
export {
  DatastoreDecodeError,
  DatastoreError,
  DatastoreGoneError,
  DatastoreListError,
  DatastoreIngestWorkerError,
  DatastoreProbeError,
  DatastoreWatchdogError,
  DatastoreWatchError,
  isDatastoreError,
} from "./errors.js";
export type { DatastoreErrorCode } from "./errors.js";
export {
  CALICO_API_GROUPS,
  CONVERSION_VERSION,
  conversionId,
  convert,
  createResources,
  crdPlural,
  findResource,
  RESOURCES,
  resourceId,
  resourcesForKinds,
  staticEntries,
} from "./registry.js";
export type { CalicoApiGroup, ConvertOptions } from "./registry.js";
export type { ConvertRejection, ConvertResult, KubeMetadata, KubeObject, UpstreamResource } from "./types.js";
export { CALICO_API_VERSION, CHANGED_AT_ANNOTATION } from "./convert/common.js";
export { vethNameForPod, workloadEndpointKey } from "./convert/pod.js";
export { convertUid, workloadEndpointName } from "./convert/names.js";
