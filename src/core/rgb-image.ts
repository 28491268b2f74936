// The one pixel format between decoders (files, GStreamer) and preprocessing/annotation.
// Packed 8-bit RGB with no row padding, so an index is always (y * width + x) * 3.

export interface RgbImage {
  width: number;
  height: number;
  /** Packed RGB, row-major, no stride padding: length === width * height * 3. */
  data: Uint8Array;
}

/** Throws a RangeError naming `where` when the image's size and buffer disagree. */
export function assertRgbImage(img: RgbImage, where: string): void {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`${where}: image size must be positive integers, got ${String(width)}x${String(height)}`);
  }
  if (data.length !== width * height * 3) {
    throw new RangeError(
      `${where}: ${width}x${height} RGB image needs ${width * height * 3} bytes, buffer has ${data.length}`,
    );
  }
}
