/**
 * The ETSI GS QKD 014 message shapes, shared by the KME that sends them and the SDK that reads
 * them. Optional fields are those the standard lets a KME leave out.
 */
export interface KeyStatus {
  source_KME_ID: string;
  target_KME_ID: string;
  master_SAE_ID: string;
  slave_SAE_ID: string;
  key_size: number;
  stored_key_count: number;
  max_key_count: number;
  max_key_per_request: number;
  max_key_size: number;
  min_key_size: number;
  max_SAE_ID_count: number;
  status_extension?: Record<string, unknown>;
}

export interface DeliveredKey {
  key_ID: string;
  /** Base64. */
  key: string;
  key_ID_extension?: Record<string, unknown>;
  key_extension?: Record<string, unknown>;
}

export interface KeyContainer {
  keys: DeliveredKey[];
  key_container_extension?: Record<string, unknown>;
}

/** The body of a Get key request, as an SAE writes it. */
export interface KeyRequestBody {
  number?: number;
  size?: number;
  additional_slave_SAE_IDs?: string[];
  extension_mandatory?: Array<Record<string, unknown>>;
  extension_optional?: Array<Record<string, unknown>>;
}
