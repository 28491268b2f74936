import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Real ONNX Runtime sessions, GStreamer pipelines and TensorFlow.js graphs are slow on
    // a 2-core machine; a timeout is a hang detector here, never a performance check.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    fileParallelism: false,
  },
});
