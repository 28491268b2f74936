// Types of eslint/layers.js for the TypeScript test that imports it.
import type { ESLint } from "eslint";

/** folder of src/ -> the other folders of src/ it may import from */
export const LAYERS: Readonly<Record<string, readonly string[]>>;
export const layersPlugin: ESLint.Plugin;
