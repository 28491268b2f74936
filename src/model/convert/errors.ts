/** A conversion failure tied to one node of the source graph. */
export class ConversionError extends Error {
  constructor(
    readonly nodeName: string,
    readonly op: string,
    message: string,
  ) {
    super(`node ${nodeName} (${op}): ${message}`);
    this.name = "ConversionError";
  }
}
