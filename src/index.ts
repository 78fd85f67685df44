/** The QKS SDK: what other Node programs import from `qks`. */
export { KmeClient, KmeError } from './sae/kme-client.js';
export type {
  KmeClientOptions,
  KeyContainer,
  KeyRequest,
  KeyStatus,
  DeliveredKey,
  AuthHeaders,
} from './sae/kme-client.js';
export { Initiator, type InitiatorOptions } from './sae/agreement/initiator.js';
export { Responder, type ResponderOptions } from './sae/agreement/responder.js';
export { AgreementError, type AgreementErrorCode } from './sae/agreement/messages.js';
export type { AgreedKey, AgreedKeys, SaeTls } from './sae/agreement/types.js';
export { TokenClient, TokenError, type ClientCredentials } from './sae/token-client.js';
export { KeyRing, type ActiveKey } from './sae/key-ring.js';
export { Rotation, type RotationPolicy } from './sae/rotation.js';
export { keepSecretsFile, writeSecretsFile } from './sae/secrets-file.js';
export { startKme, type RunningKme } from './kme/kme.js';
export { loadConfig, parseConfig, ConfigError, type KmeConfig } from './kme/config.js';
export { IntegrationReporter, type IntegrationReporterOptions } from './integrations/reporter.js';
export type { IntegrationReport, IntegrationKind, IntegrationState } from './domain/integration-report.js';
export type { KmeOverview } from './kme/observability/overview.js';
