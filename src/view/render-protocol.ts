// The contract between the live view and its render thread, as types in one place.
import type { LetterboxTransform } from "../core/types.ts";
import type { OverlayScene } from "./overlay.ts";

export interface RenderRequest {
  id: number;
  /** the model input the daemon ran, packed RGB at transform.dstWidth x dstHeight; transferred */
  pixels: ArrayBuffer;
  transform: LetterboxTransform;
  /** in source pixels; sourceWidth/sourceHeight are filled in by the thread */
  scene: OverlayScene;
  /** longer side of the rendering at most this */
  maxSide: number;
}

export type RenderReply =
  | { id: number; ok: true; width: number; height: number; /** packed RGB; transferred */ pixels: ArrayBuffer }
  | { id: number; ok: false; error: string };
