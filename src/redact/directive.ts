/**
 * A masking directive, as policies write them (README, "Policy contract"):
 * the redactor's own vocabulary, so that this leaf folder imports nothing above it.
 */
export type MaskAction = 'redact' | 'hash' | 'remove';

export interface MaskDirective {
  readonly path: string;
  readonly action: MaskAction;
  /** A filter over the object itself (`@.type != 'kubernetes.io/tls'`): the path applies only where it holds. */
  readonly when?: string;
  /** Table columns whose cells are rendered from the masked field. */
  readonly columns?: readonly string[];
}
