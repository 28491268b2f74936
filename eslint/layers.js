// The layering of src/, kept by the linter: which top-level folder of src/ may import from
// which. A stage (ingest, infer, ...) sees only the shared vocabulary (core) and helpers
// (util), never another stage; config and the daemon sit above the stages and wire them;
// the tools (cli, soak) sit on top. README.md ("Layout and layering") draws the same tree.
//
// The rule resolves each relative import against the importing file, so it judges the
// folder an import lands in, however many "../" it takes to get there.
import path from "node:path";

const STAGES = ["ingest", "infer", "perception", "bus", "metrics", "health", "view"];

/** folder -> the other folders of src/ it may import from (its own is always allowed). */
export const LAYERS = {
  core: [],
  util: ["core"],
  ...Object.fromEntries(STAGES.map((s) => [s, ["core", "util"]])),
  // The schema takes its enums and bounds from the modules they describe.
  config: ["core", "util", ...STAGES],
  // The model toolchain: the runtime (infer) to run models, ingest's decoders to read data.
  model: ["core", "util", "infer", "ingest"],
  // The composition root.
  daemon: ["core", "util", "config", ...STAGES],
  soak: ["core", "util", "config", ...STAGES],
  cli: ["core", "util", "config", "daemon", "model", "soak", ...STAGES],
};

function srcFolder(file, srcRoot) {
  const rel = path.relative(srcRoot, file);
  if (rel.startsWith("..") || path.isAbsolute(rel)) return null;
  const parts = rel.split(path.sep);
  return parts.length > 1 ? parts[0] : null;
}

/** @type {import("eslint").Rule.RuleModule} */
const rule = {
  meta: {
    type: "problem",
    docs: { description: "keep src/'s folders in their layers (eslint/layers.js)" },
    schema: [],
    messages: {
      crossLayer:
        "src/{{from}} may not import from src/{{to}} ({{spec}}); src/{{from}} may use: {{allowed}}. Pass plain data or options in from the composition root (src/daemon) instead.",
      unknownFolder: "src/{{from}} has no entry in eslint/layers.js; add it to the layering before importing across folders",
    },
  },
  create(context) {
    const file = context.physicalFilename ?? context.filename;
    const srcRoot = path.join(context.cwd ?? process.cwd(), "src");
    const from = srcFolder(file, srcRoot);
    if (from === null) return {};
    function check(node, spec) {
      if (typeof spec !== "string" || !spec.startsWith(".")) return;
      const to = srcFolder(path.resolve(path.dirname(file), spec), srcRoot);
      if (to === null || to === from) return;
      const allowed = LAYERS[from];
      if (allowed === undefined) {
        context.report({ node, messageId: "unknownFolder", data: { from } });
        return;
      }
      if (!allowed.includes(to)) {
        context.report({ node, messageId: "crossLayer", data: { from, to, spec, allowed: allowed.length ? allowed.join(", ") : "(nothing: it is the bottom layer)" } });
      }
    }
    return {
      ImportDeclaration: (n) => check(n.source, n.source.value),
      ExportNamedDeclaration: (n) => n.source && check(n.source, n.source.value),
      ExportAllDeclaration: (n) => check(n.source, n.source.value),
      ImportExpression: (n) => n.source.type === "Literal" && check(n.source, n.source.value),
    };
  },
};

export const layersPlugin = { rules: { layers: rule } };
