import tseslint from "typescript-eslint";
import { layersPlugin } from "./eslint/layers.js";

export default tseslint.config(
  { ignores: ["node_modules/", "dist/", ".cache/", "models/", "coverage/"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "error",
    },
  },
  {
    // src/'s folders stay in their layers: see eslint/layers.js.
    files: ["src/**/*.ts", "src/**/*.mjs"],
    plugins: { perceptd: layersPlugin },
    rules: { "perceptd/layers": "error" },
  },
);
