/**
 * The one table of error codes. Every failure the KME reports to an SAE is a QksError with a code
 * from this table; `kme/http/etsi-errors.ts` maps it to the ETSI GS QKD 014 status and body.
 * Messages the standard names are used verbatim.
 */
export const ERROR_TABLE = {
  BAD_REQUEST: { status: 400, message: 'bad request' },
  SIZE_NOT_MULTIPLE_OF_8: { status: 400, message: 'size shall be a multiple of 8' },
  EXTENSION_MANDATORY_UNSUPPORTED: {
    status: 400,
    message: 'not all extension_mandatory parameters are supported',
  },
  EXTENSION_MANDATORY_UNMET: {
    status: 400,
    message: 'not all extension_mandatory request options could be met',
  },
  KEYS_NOT_FOUND: { status: 400, message: 'one or more keys specified are not found on KME' },
  UNAUTHORIZED: { status: 401, message: 'unauthorized' },
  NOT_ENOUGH_KEY_MATERIAL: { status: 503, message: 'not enough key material' },
  PEER_KME_UNAVAILABLE: { status: 503, message: 'peer KME unavailable' },
  /** Between KMEs only: a replica refuses a QKD link's messages while another replica runs the link. */
  LINK_OWNED_ELSEWHERE: { status: 503, message: 'another replica of this KME runs the link' },
  KEY_DATA_ACCESS_ERROR: { status: 503, message: 'key data access error' },
  INTERNAL: { status: 503, message: 'internal error' },
} as const satisfies Record<string, { status: 400 | 401 | 503; message: string }>;

export type ErrorCode = keyof typeof ERROR_TABLE;
export type ErrorDetail = Record<string, unknown>;

export class QksError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetail[] | undefined;

  /** `message` overrides the table's text only for codes whose text the standard leaves open. */
  constructor(code: ErrorCode, message?: string, details?: ErrorDetail[]) {
    super(message ?? ERROR_TABLE[code].message);
    this.name = 'QksError';
    this.code = code;
    this.details = details;
  }

  get status(): 400 | 401 | 503 {
    return ERROR_TABLE[this.code].status;
  }
}

export const badRequest = (message: string, details?: ErrorDetail[]): QksError =>
  new QksError('BAD_REQUEST', message, details);
