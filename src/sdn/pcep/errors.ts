/** Why a PCEP message could not be decoded; one closed set, so callers can `switch (err.code)`. */
export type PcepDecodeErrorCode =
  /** The input ends before a header, a field or a declared length does. */
  | 'TRUNCATED'
  /** A length field is below its header's size, overruns its container, or disagrees with the content. */
  | 'BAD_LENGTH'
  /** The message declares more than the configured maximum (see MAX_MESSAGE_BYTES). */
  | 'MESSAGE_TOO_LARGE'
  /** The common header or the OPEN object says a version other than 1. */
  | 'BAD_VERSION'
  /** A reserved bit or a Reserved field is not zero (stricter than RFC 5440's "ignored on receipt"). */
  | 'RESERVED_BITS'
  /** A field holds a value the object cannot carry (prefix length > 32, NaN metric, ...). */
  | 'BAD_VALUE'
  /** An Open, Keepalive, Close or PCErr message whose objects break its RFC 5440 grammar. */
  | 'BAD_MESSAGE';

/** Every code, with what it means (a Record, so that a new code cannot be left out; docs/sdn.md lists them). */
export const DECODE_ERROR_MEANING: Record<PcepDecodeErrorCode, string> = {
  TRUNCATED: 'the input ends before a header, a field or a declared length',
  BAD_LENGTH: 'a length field is too small, overruns, or disagrees with the content',
  MESSAGE_TOO_LARGE: 'the message declares more than the maximum',
  BAD_VERSION: 'version other than 1 in the common header or the OPEN object',
  RESERVED_BITS: 'a reserved bit or Reserved field is not zero',
  BAD_VALUE: 'a field holds a value its object cannot carry',
  BAD_MESSAGE: "the objects break the message's grammar",
};

/** The PCErr to send back (RFC 5440 section 7.15), when RFC 5440 defines one. */
export interface PcepErrorReply {
  readonly errorType: number;
  readonly errorValue: number;
}

/** Error-Type/Error-value pairs this library sends (RFC 5440 section 7.15, IANA "PCEP-ERROR Object Error Types and Values"). */
export const PCERR = {
  invalidOpen: { errorType: 1, errorValue: 1 },
  openWaitExpired: { errorType: 1, errorValue: 2 },
  keepWaitExpired: { errorType: 1, errorValue: 7 },
  versionNotSupported: { errorType: 1, errorValue: 8 },
  unrecognizedObjectClass: { errorType: 3, errorValue: 1 },
  unrecognizedObjectType: { errorType: 3, errorValue: 2 },
  unsupportedObjectClass: { errorType: 4, errorValue: 1 },
  unsupportedObjectType: { errorType: 4, errorValue: 2 },
  rpMissing: { errorType: 6, errorValue: 1 },
  endPointsMissing: { errorType: 6, errorValue: 3 },
  pFlagNotSet: { errorType: 10, errorValue: 1 },
} as const satisfies Record<string, PcepErrorReply>;

/** CLOSE object reasons (RFC 5440 section 7.17). */
export const CLOSE_REASON = { noExplanation: 1, deadTimerExpired: 2, malformedMessage: 3 } as const;

/**
 * Thrown by the decoders. `offset` is where in the input the problem was found. `reply` is the
 * PCErr RFC 5440 defines for it on an established session; when it has none (framing errors),
 * the session is closed with CLOSE reason 3 "reception of a malformed PCEP message".
 */
export class PcepDecodeError extends Error {
  override readonly name = 'PcepDecodeError';
  constructor(
    readonly code: PcepDecodeErrorCode,
    message: string,
    readonly offset: number,
  ) {
    super(`${message} (at byte ${offset})`);
  }

  get reply(): PcepErrorReply | undefined {
    return this.code === 'BAD_VERSION' ? PCERR.versionNotSupported : undefined;
  }
}
