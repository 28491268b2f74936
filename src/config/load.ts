// Loading the daemon's YAML configuration: parse (keeping source positions), apply
// environment and --set overrides, validate against ConfigSchema, and report every problem
// at once with the place it comes from. The keys themselves live only in schema.ts; this
// file walks that schema and never names a key.
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { LineCounter, isMap, isNode, isScalar, parse as parseYaml, parseDocument } from "yaml";
import type { Document } from "yaml";
import { z } from "zod";
import { ConfigSchema, filePathKeys } from "./schema.ts";
import type { Config } from "./schema.ts";

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the config file. */
  path: string;
  /** What contributed, lowest precedence first: the file, then `env NAME`, then `--set key.path` (values left out: they may hold secrets). */
  sources: string[];
}

export interface ConfigOverrides {
  /** `key.path=value`, applied last; the path is dotted, array indexes are numbers (`cameras.0.source.loop=true`). */
  set?: string[];
  /** Defaults to process.env; `PERCEPTD_SECTION__KEY=value`. Pass `{}` to ignore the environment. */
  env?: NodeJS.ProcessEnv;
}

export interface ConfigProblem {
  /** Dotted key path (`cameras.0.source.path`); "" for the file as a whole. */
  path: string;
  message: string;
  /** Config file the problem was found in, or the override it comes from (`--set metrics.port=abc`, `PERCEPTD_METRICS__PORT=abc`). */
  where: string;
  /** 1-based position in the file: of the key itself, or of the nearest enclosing block when the key is missing. */
  line?: number;
  column?: number;
  fromOverride?: boolean;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly file: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    super(`${file}: ${problems.length === 1 ? "1 problem" : `${problems.length} problems`}\n${problems.map((p) => `  ${formatProblem(p)}`).join("\n")}`);
  }
}

export function formatProblem(p: ConfigProblem): string {
  const key = p.path === "" ? "" : `${p.path}: `;
  if (p.fromOverride) return `${key}${p.message} (from ${p.where})`;
  const at = p.line === undefined ? p.where : `${p.where}:${p.line}:${p.column ?? 1}`;
  return `${at} ${key}${p.message}`;
}

/**
 * PERCEPTD_* variables that belong to tools around the daemon, not to its configuration;
 * the PERCEPTD_TEST_* ones are the test-only faults of src/infer/worker.ts and src/util/fault-trigger.ts.
 */
const NON_CONFIG_ENV = new Set([
  "PERCEPTD_PYTHON",
  "PERCEPTD_SKIP_APT",
  "PERCEPTD_TEST_INFER_STALL_MS",
  "PERCEPTD_TEST_INFER_STALL_AFTER",
  "PERCEPTD_TEST_INFER_STALL_EVERY",
  "PERCEPTD_TEST_FAULT_DIR",
]);
const ENV_PREFIX = "PERCEPTD_";

type Segment = string | number;
type Container = Record<string, unknown> | unknown[];

export async function loadConfig(path: string, overrides: ConfigOverrides = {}): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a folder" : String(err);
    throw new ConfigError(path, [{ path: "", where: path, message: `cannot read the config file: ${why}` }]);
  }

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  const syntax = [...doc.errors, ...doc.warnings];
  if (syntax.length > 0) {
    throw new ConfigError(
      path,
      syntax.map((e) => ({
        path: "",
        where: path,
        line: e.linePos?.[0].line,
        column: e.linePos?.[0].col,
        // The parser's own message repeats the position and quotes the line; ours leads with both.
        message: `YAML: ${e.message.replace(/ at line \d+, column \d+:?[\s\S]*$/, "")}`,
      })),
    );
  }

  const raw: unknown = doc.toJS() ?? {};
  if (!isRecord(raw)) {
    throw new ConfigError(path, [{ path: "", where: path, line: 1, column: 1, message: `expected a mapping of sections (${Object.keys(ConfigSchema.shape).join(", ")}), got ${describeValue(raw)}` }]);
  }

  const problems: ConfigProblem[] = [];
  const sources = [path];
  // Which dotted path each override wrote: problems under it are reported against the
  // override instead of the file, and relative paths in it resolve against the cwd.
  const origins = new Map<string, string>();

  for (const o of environmentOverrides(overrides.env ?? process.env)) {
    if (applyOverride(raw, o, origins, problems)) sources.push(`env ${o.name}`);
  }
  for (const o of setOverrides(overrides.set ?? [], problems)) {
    if (applyOverride(raw, o, origins, problems)) sources.push(`--set ${o.name}`);
  }

  const result = ConfigSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(...problemsOfIssue(issue, raw, doc, lineCounter, path, origins));
  }
  if (problems.length > 0) throw new ConfigError(path, sortProblems(problems));
  if (!result.success) throw new Error("unreachable: failed validation produced no problems");

  const config = result.data;
  resolveFilePaths(config, dirname(resolve(path)), origins);
  return { config, path: resolve(path), sources };
}

// ---------------------------------------------------------------------------------------
// Overrides

interface Override {
  /** How the user spelled it, for messages: `--set metrics.port=abc` or `PERCEPTD_METRICS__PORT=abc`. */
  label: string;
  /** For `sources`: `metrics.port` or `PERCEPTD_METRICS__PORT`. */
  name: string;
  segments: string[];
  value: string;
  /** Empty environment values count as unset (a common way to clear a variable in unit files), but their name is still checked. */
  skipValue: boolean;
}

function environmentOverrides(env: NodeJS.ProcessEnv): Override[] {
  return Object.keys(env)
    .filter((k) => k.startsWith(ENV_PREFIX) && !NON_CONFIG_ENV.has(k))
    .sort()
    .map((name) => {
      const value = env[name] ?? "";
      return { label: `${name}=${value}`, name, segments: name.slice(ENV_PREFIX.length).split("__"), value, skipValue: value === "" };
    });
}

function setOverrides(set: string[], problems: ConfigProblem[]): Override[] {
  const out: Override[] = [];
  for (const s of set) {
    const eq = s.indexOf("=");
    if (eq <= 0) {
      problems.push({ path: "", where: `--set ${s}`, fromOverride: true, message: "expected key.path=value" });
      continue;
    }
    const key = s.slice(0, eq).trim();
    out.push({ label: `--set ${s}`, name: key, segments: key.split("."), value: s.slice(eq + 1), skipValue: false });
  }
  return out;
}

/** Writes one override into the parsed file; false (and a problem) when its key names nothing in the schema. */
function applyOverride(root: Record<string, unknown>, o: Override, origins: Map<string, string>, problems: ConfigProblem[]): boolean {
  const resolved = resolveOverridePath(root, o.segments);
  if ("error" in resolved) {
    let message = resolved.error;
    // PERCEPTD_MODEL_NAME for PERCEPTD_MODEL__NAME: one underscore where two separate levels.
    const retry = o.name.startsWith(ENV_PREFIX) ? o.segments.flatMap((s) => s.split("_")) : [];
    if (retry.length > o.segments.length && !("error" in resolveOverridePath(root, retry)))
      message += `; levels are separated by '__': ${ENV_PREFIX}${retry.join("__")}`;
    problems.push({ path: resolved.at.join("."), where: o.label, fromOverride: true, message });
    return false;
  }
  if (o.skipValue) return false;

  const { path, leaf } = resolved;
  let value: unknown;
  if (takesText(leaf)) {
    // Kept verbatim: YAML would turn a model called 010 into the number 10, `null` into null.
    value = o.value;
  } else {
    try {
      value = parseYaml(o.value);
    } catch (err) {
      problems.push({ path: path.join("."), where: o.label, fromOverride: true, message: `value is not valid YAML: ${(err as Error).message.split("\n")[0]}` });
      return false;
    }
  }

  let node: Container = root;
  let schema: z.core.$ZodType = ConfigSchema;
  for (const key of path.slice(0, -1)) {
    const step = childOf(schema, node, String(key));
    if ("error" in step) throw new Error(`unreachable: ${step.error}`);
    schema = step.schema;
    const existing = getChild(node, key);
    if (isContainer(existing)) {
      node = existing;
    } else {
      const fresh: Container = unwrap(schema) instanceof z.ZodArray ? [] : {};
      setChild(node, key, fresh);
      node = fresh;
    }
  }
  setChild(node, path[path.length - 1], value);
  origins.set(path.join("."), o.label);
  return true;
}

type ResolvedPath = { path: Segment[]; leaf: z.core.$ZodType } | { error: string; at: Segment[] };

/** Maps the user's spelling of a key path onto the schema's keys, without touching the data. */
function resolveOverridePath(root: Record<string, unknown>, segments: string[]): ResolvedPath {
  if (segments.some((s) => s === "")) return { at: segments, error: "empty level in the key path (levels are separated by '.' for --set, '__' in the environment)" };
  let schema: z.core.$ZodType = ConfigSchema;
  let node: unknown = root;
  const path: Segment[] = [];
  for (const seg of segments) {
    const step = childOf(schema, node, seg, path);
    if ("error" in step) return { at: [...path, seg], error: step.error };
    const length = Array.isArray(node) ? node.length : 0;
    if (typeof step.key === "number" && step.key > length)
      return { at: [...path, step.key], error: `index ${step.key} is past the end of ${describePath(path)} (${length} ${length === 1 ? "entry" : "entries"}; the next one is ${length})` };
    path.push(step.key);
    schema = step.schema;
    node = isContainer(node) ? getChild(node, step.key) : undefined;
  }
  return { path, leaf: schema };
}

type Step = { key: Segment; schema: z.core.$ZodType } | { error: string };

/** One level down the schema, matching a key case-insensitively (environment names are upper case). */
function childOf(parent: z.core.$ZodType, node: unknown, segment: string, at: Segment[] = []): Step {
  const s = unwrap(parent);
  if (s instanceof z.ZodArray) {
    if (!/^\d+$/.test(segment)) return { error: `"${segment}" is not a list index (0, 1, ...)` };
    return { key: Number(segment), schema: s.element };
  }
  const shape = objectShape(s, node);
  if (shape === undefined) return { error: `no key "${segment}" here: this is a single value, not a section` };
  const keys = Object.keys(shape);
  const key = keys.find((k) => k === segment) ?? keys.find((k) => k.toLowerCase() === segment.toLowerCase());
  if (key === undefined) return { error: unknownKeyMessage(segment, at, keys, s instanceof z.ZodDiscriminatedUnion ? { union: s, node } : undefined) };
  return { key, schema: shape[key] };
}

/** Keys of an object schema, or of the discriminated-union variant the data selects (all variants' keys when it selects none). */
function objectShape(s: z.core.$ZodType, node: unknown): Record<string, z.core.$ZodType> | undefined {
  if (s instanceof z.ZodObject) return s.shape as Record<string, z.core.$ZodType>;
  if (s instanceof z.ZodDiscriminatedUnion) {
    const variant = selectVariant(s, node);
    if (variant) return variant.shape as Record<string, z.core.$ZodType>;
    const merged: Record<string, z.core.$ZodType> = {};
    for (const o of variantsOf(s)) for (const [k, v] of Object.entries(o.shape)) merged[k] ??= v as z.core.$ZodType;
    return merged;
  }
  return undefined;
}

function variantsOf(u: z.ZodDiscriminatedUnion): z.ZodObject[] {
  return u.options.filter((o): o is z.ZodObject => o instanceof z.ZodObject);
}

function discriminatorValues(u: z.ZodDiscriminatedUnion): string[] {
  const d = u.def.discriminator;
  return variantsOf(u).flatMap((o) => {
    const lit = o.shape[d];
    return lit instanceof z.ZodLiteral ? [...lit.values].map(String) : [];
  });
}

function selectVariant(u: z.ZodDiscriminatedUnion, node: unknown): z.ZodObject | undefined {
  if (!isRecord(node)) return undefined;
  const d = u.def.discriminator;
  return variantsOf(u).find((o) => {
    const lit = o.shape[d];
    return lit instanceof z.ZodLiteral && lit.values.has(node[d] as never);
  });
}

function takesText(schema: z.core.$ZodType): boolean {
  const s = unwrap(schema);
  if (s instanceof z.ZodString || s instanceof z.ZodEnum) return true;
  return s instanceof z.ZodLiteral && [...s.values].every((v) => typeof v === "string");
}

function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap();
    else return s;
  }
}

// ---------------------------------------------------------------------------------------
// Turning zod issues into problems with positions

function problemsOfIssue(
  issue: z.core.$ZodIssue,
  data: Record<string, unknown>,
  doc: Document,
  lines: LineCounter,
  file: string,
  origins: Map<string, string>,
): ConfigProblem[] {
  const path = issue.path.filter((s): s is Segment => typeof s === "string" || typeof s === "number");
  if (issue.code === "unrecognized_keys") {
    const owner = unwrap(schemaAt(path, data) ?? ConfigSchema);
    const container = valueAt(data, path);
    const known = Object.keys(objectShape(owner, container) ?? {});
    return issue.keys.map((k) => place([...path, k], unknownKeyMessage(k, path, known, owner instanceof z.ZodDiscriminatedUnion ? { union: owner, node: container } : undefined), true));
  }
  return [place(path, messageOf(issue, path, data), false)];

  function place(p: Segment[], message: string, atKey: boolean): ConfigProblem {
    const display = describePath(p);
    const note = cameraNote(p, data);
    const msg = note ? `${message} [${note}]` : message;
    for (let n = p.length; n >= 0; n--) {
      const origin = origins.get(p.slice(0, n).join("."));
      if (origin !== undefined && n > 0) return { path: display, where: origin, fromOverride: true, message: msg };
    }
    const pos = positionOf(doc, lines, p, atKey);
    return { path: display, where: file, message: msg, ...pos };
  }
}

function messageOf(issue: z.core.$ZodIssue, path: Segment[], data: Record<string, unknown>): string {
  const input = "input" in issue ? issue.input : undefined;
  switch (issue.code) {
    case "invalid_type": {
      if (issue.expected === "int") return `must be an integer${rangeText(schemaAt(path, data))} (got ${describeValue(input)})`;
      const want = kindName(issue.expected);
      if (input === undefined) return `required (${want})`;
      return `expected ${want}, got ${describeValue(input)}`;
    }
    case "too_small":
    case "too_big": {
      const n = issue.code === "too_small" ? issue.minimum : issue.maximum;
      if (issue.origin === "number" || issue.origin === "int") return `must be within${rangeText(schemaAt(path, data)) || ` ${issue.code === "too_small" ? ">=" : "<="} ${String(n)}`} (got ${describeValue(input)})`;
      if (issue.origin === "array") return `must have at ${issue.code === "too_small" ? "least" : "most"} ${String(n)} ${Number(n) === 1 ? "entry" : "entries"}`;
      if (issue.origin === "string") return Number(n) === 1 && issue.code === "too_small" ? "must not be empty" : `must have at ${issue.code === "too_small" ? "least" : "most"} ${String(n)} characters`;
      return issue.message;
    }
    case "invalid_value": {
      const allowed = issue.values.map(String);
      const base = allowed.length === 1 ? `must be ${allowed[0]}` : `must be one of ${allowed.join(", ")}`;
      return `${base} (got ${describeValue(input)})${suggestion(input, allowed)}`;
    }
    case "invalid_union": {
      const u = unwrap(schemaAt(path.slice(0, -1), data) ?? ConfigSchema);
      if (u instanceof z.ZodDiscriminatedUnion) {
        const allowed = discriminatorValues(u);
        const got = isRecord(input) ? input[u.def.discriminator] : undefined;
        if (got === undefined) return `required: one of ${allowed.join(", ")}`;
        return `must be one of ${allowed.join(", ")} (got ${describeValue(got)})${suggestion(got, allowed)}`;
      }
      return issue.message;
    }
    case "invalid_format":
      return `${issue.message} (got ${describeValue(input)})`;
    default:
      return issue.message;
  }
}

/** "did you mean" for a mistyped key, or a pointer to the source type that has it. */
function unknownKeyMessage(key: string, at: Segment[], known: string[], variant: { union: z.ZodDiscriminatedUnion; node: unknown } | undefined): string {
  let msg = `unknown key "${key}" ${at.length === 0 ? "at the top level" : `in ${describePath(at)}`}${suggestion(key, known)}`;
  if (variant && !known.includes(key)) {
    const d = variant.union.def.discriminator;
    const owners = variantsOf(variant.union)
      .filter((o) => key in o.shape)
      .map((o) => o.shape[d])
      .flatMap((lit) => (lit instanceof z.ZodLiteral ? [...lit.values].map(String) : []));
    const current = isRecord(variant.node) ? variant.node[d] : undefined;
    if (owners.length > 0) msg += `; ${key} belongs to ${d} ${owners.join(" or ")}, this is ${d} ${String(current)}`;
  }
  return msg;
}

function suggestion(got: unknown, candidates: string[]): string {
  if (typeof got !== "string") return "";
  const g = got.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(g, c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  if (best === undefined || best === got) return "";
  const limit = got.length <= 4 ? 1 : got.length <= 8 ? 2 : 3;
  if (bestD > limit) return "";
  return bestD === 0 ? `, did you mean ${best}? (keys and values are case-sensitive)` : `, did you mean ${best}?`;
}

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions, the commonest typo. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The schema that validates `path`, following the data through lists and source types. */
function schemaAt(path: Segment[], data: unknown): z.core.$ZodType | undefined {
  let schema: z.core.$ZodType = ConfigSchema;
  let node: unknown = data;
  for (const seg of path) {
    const step = childOf(schema, node, String(seg));
    if ("error" in step) return undefined;
    schema = step.schema;
    node = isContainer(node) ? getChild(node, step.key) : undefined;
  }
  return schema;
}

function valueAt(data: unknown, path: Segment[]): unknown {
  let node = data;
  for (const seg of path) node = isContainer(node) ? getChild(node, seg) : undefined;
  return node;
}

interface NumberBounds {
  min?: number;
  minInclusive?: boolean;
  max?: number;
  maxInclusive?: boolean;
}

/** The parts of a leaf's JSON Schema that messages and describeConfig() quote. */
interface LeafJsonSchema {
  type?: string;
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  exclusiveMaximum?: number;
  pattern?: string;
  minItems?: number;
}

/**
 * A leaf schema's constraints through zod's public z.toJSONSchema, not its internals
 * (`_zod.def`), which a minor release of the caret range may rearrange. "any" stands in
 * for what JSON Schema cannot say (a refinement), which no message quotes anyway.
 */
function leafJsonSchema(schema: z.core.$ZodType): LeafJsonSchema {
  return z.toJSONSchema(schema, { unrepresentable: "any" }) as LeafJsonSchema;
}

function numberBounds(schema: z.core.$ZodType | undefined): NumberBounds {
  if (schema === undefined) return {};
  const j = leafJsonSchema(unwrap(schema));
  // z.int() states the safe-integer range in JSON Schema; it is no bound of ours to quote.
  if (j.minimum === Number.MIN_SAFE_INTEGER) delete j.minimum;
  if (j.maximum === Number.MAX_SAFE_INTEGER) delete j.maximum;
  const b: NumberBounds = {};
  if (j.minimum !== undefined) [b.min, b.minInclusive] = [j.minimum, true];
  else if (j.exclusiveMinimum !== undefined) [b.min, b.minInclusive] = [j.exclusiveMinimum, false];
  if (j.maximum !== undefined) [b.max, b.maxInclusive] = [j.maximum, true];
  else if (j.exclusiveMaximum !== undefined) [b.max, b.maxInclusive] = [j.exclusiveMaximum, false];
  return b;
}

function rangeText(schema: z.core.$ZodType | undefined): string {
  const b = numberBounds(schema);
  if (b.min !== undefined && b.max !== undefined && b.minInclusive && b.maxInclusive) return ` ${b.min}..${b.max}`;
  const parts = [b.min !== undefined ? `${b.minInclusive ? ">=" : ">"} ${b.min}` : "", b.max !== undefined ? `${b.maxInclusive ? "<=" : "<"} ${b.max}` : ""].filter(Boolean);
  return parts.length ? ` ${parts.join(" and ")}` : "";
}

function kindName(expected: string): string {
  switch (expected) {
    case "object":
      return "a mapping";
    case "array":
      return "a list";
    case "boolean":
      return "true or false";
    case "int":
      return "an integer";
    default:
      return `a ${expected}`;
  }
}

function describeValue(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "an empty value";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `"${v}"`;
  return String(v);
}

function describePath(path: Segment[]): string {
  return path.join(".");
}

/** Names the camera by id as well as index: `cameras.2` alone makes the reader count. */
function cameraNote(path: Segment[], data: Record<string, unknown>): string | undefined {
  if (path[0] !== "cameras" || typeof path[1] !== "number" || path.length < 3 || path[2] === "id") return undefined;
  const id = valueAt(data, ["cameras", path[1], "id"]);
  return typeof id === "string" ? `camera "${id}"` : undefined;
}

function positionOf(doc: Document, lines: LineCounter, path: Segment[], atKey: boolean): { line?: number; column?: number } {
  // An unknown key is reported at the key itself; anything else at its value, or at the
  // nearest enclosing block when it is missing from the file.
  if (atKey && path.length > 0) {
    const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
    if (isMap(parent)) {
      const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(path[path.length - 1]));
      if (pair && isNode(pair.key) && pair.key.range) return toPos(lines, pair.key.range[0]);
    }
  }
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) return toPos(lines, node.range[0]);
  }
  return {};
}

function toPos(lines: LineCounter, offset: number): { line: number; column: number } {
  const p = lines.linePos(offset);
  return { line: p.line, column: p.col };
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  // Overrides first (they are on the command line the user just typed), then file order.
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => Number(!a.p.fromOverride) - Number(!b.p.fromOverride) || (a.p.line ?? Infinity) - (b.p.line ?? Infinity) || (a.p.column ?? 0) - (b.p.column ?? 0) || a.i - b.i)
    .map(({ p }) => p);
}

// ---------------------------------------------------------------------------------------
// Relative paths

function resolveFilePaths(config: Config, configDir: string, origins: Map<string, string>): void {
  visit(ConfigSchema, config, [], (schema, value, path, parent, key) => {
    if (!filePathKeys.has(schema) || typeof value !== "string" || isAbsolute(value)) return;
    // A path typed on the command line or in the environment means what it means in the
    // shell that typed it: relative to the cwd, not to a file the user may never have opened.
    let fromOverride = false;
    for (let n = path.length; n > 0 && !fromOverride; n--) fromOverride = origins.has(path.slice(0, n).join("."));
    setChild(parent, key, resolve(fromOverride ? process.cwd() : configDir, value));
  });
}

type Visitor = (schema: z.core.$ZodType, value: unknown, path: Segment[], parent: Container, key: Segment) => void;

function visit(schema: z.core.$ZodType, value: unknown, path: Segment[], fn: Visitor, parent?: Container, key?: Segment): void {
  const s = unwrap(schema);
  if (s instanceof z.ZodArray && Array.isArray(value)) {
    value.forEach((v, i) => visit(s.element, v, [...path, i], fn, value, i));
    return;
  }
  const shape = isRecord(value) ? objectShape(s, value) : undefined;
  if (shape && isRecord(value)) {
    for (const [k, child] of Object.entries(shape)) if (value[k] !== undefined) visit(child, value[k], [...path, k], fn, value, k);
    return;
  }
  if (parent !== undefined && key !== undefined) fn(s, value, path, parent, key);
}

// ---------------------------------------------------------------------------------------

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isContainer(v: unknown): v is Container {
  return typeof v === "object" && v !== null;
}

function getChild(node: Container, key: Segment): unknown {
  return Array.isArray(node) ? node[Number(key)] : node[String(key)];
}

function setChild(node: Container, key: Segment, value: unknown): void {
  if (Array.isArray(node)) node[Number(key)] = value;
  else node[String(key)] = value;
}

// ---------------------------------------------------------------------------------------
// Reference text

/**
 * Every key with its type, default and description, generated from ConfigSchema (for
 * `perceptd run --help-config` and the README).
 */
export function describeConfig(): string {
  const out: string[] = [
    "perceptd configuration (YAML). Every key below may also be set with --set key.path=value",
    "or with the environment variable PERCEPTD_KEY__PATH=value (levels separated by '__',",
    "case-insensitive): --set model.scoreThreshold=0.5, PERCEPTD_MODEL__SCORETHRESHOLD=0.5.",
    "Precedence: file < environment < --set. <i> is a list index (0, 1, ...).",
    "",
  ];
  describeInto(out, ConfigSchema, "", "");
  return out.join("\n") + "\n";
}

function describeInto(out: string[], schema: z.core.$ZodType, path: string, indent: string): void {
  const s = unwrap(schema);
  if (s instanceof z.ZodObject) {
    for (const [k, child] of Object.entries(s.shape as Record<string, z.core.$ZodType>)) {
      const p = path ? `${path}.${k}` : k;
      const inner = unwrap(child);
      if (inner instanceof z.ZodObject) {
        out.push(`${indent}${p}:${requiredText(child)}`);
        pushDescription(out, child, indent);
        describeInto(out, inner, p, indent + "  ");
        out.push("");
      } else if (inner instanceof z.ZodArray && unwrap(inner.element) instanceof z.ZodObject) {
        out.push(`${indent}${p}: list${lengthText(inner)}${requiredText(child)}`);
        pushDescription(out, child, indent);
        describeInto(out, inner.element, `${p}.<i>`, indent + "  ");
      } else if (inner instanceof z.ZodDiscriminatedUnion) {
        const d = inner.def.discriminator;
        out.push(`${indent}${p}: one of ${discriminatorValues(inner).length} kinds, chosen by ${p}.${d}${requiredText(child)}`);
        pushDescription(out, child, indent);
        for (const v of variantsOf(inner)) {
          const lit = v.shape[d];
          const name = lit instanceof z.ZodLiteral ? [...lit.values].map(String).join("|") : "?";
          out.push(`${indent}  ${p}.${d}: ${name}`);
          for (const [vk, vchild] of Object.entries(v.shape as Record<string, z.core.$ZodType>)) {
            if (vk !== d) describeLeaf(out, vchild, `${p}.${vk}`, indent + "    ");
          }
        }
      } else {
        describeLeaf(out, child, p, indent);
      }
    }
  }
}

function describeLeaf(out: string[], schema: z.core.$ZodType, path: string, indent: string): void {
  out.push(`${indent}${path}: ${typeText(schema)}${requiredText(schema)}${defaultText(schema)}`);
  pushDescription(out, schema, indent);
}

function pushDescription(out: string[], schema: z.core.$ZodType, indent: string): void {
  const d = descriptionOf(schema);
  if (d) out.push(`${indent}    ${d}`);
  if (filePathKeys.has(unwrap(schema))) out.push(`${indent}    (a relative path is resolved against the config file's folder)`);
}

function descriptionOf(schema: z.core.$ZodType): string | undefined {
  let s: z.core.$ZodType = schema;
  for (;;) {
    const d = z.globalRegistry.get(s)?.description;
    if (d) return d;
    if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap();
    else return undefined;
  }
}

function typeText(schema: z.core.$ZodType): string {
  const s = unwrap(schema);
  if (s instanceof z.ZodNumber) return `${s.isInt ? "integer" : "number"}${rangeText(s)}`;
  if (s instanceof z.ZodBoolean) return "true|false";
  if (s instanceof z.ZodEnum) return s.options.map(String).join("|");
  if (s instanceof z.ZodLiteral) return [...s.values].map(String).join("|");
  if (s instanceof z.ZodString) {
    const { pattern } = leafJsonSchema(s);
    const re = pattern !== undefined ? ` matching ${pattern}` : "";
    return filePathKeys.has(s) ? "path" : `string${re}`;
  }
  if (s instanceof z.ZodArray) return `list of ${typeText(s.element)}${lengthText(s)}`;
  return s instanceof z.ZodType ? s.def.type : "value";
}

function lengthText(s: z.ZodArray): string {
  const { minItems } = leafJsonSchema(s);
  return minItems !== undefined ? `, at least ${minItems}` : "";
}

function requiredText(schema: z.core.$ZodType): string {
  return schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault || schema instanceof z.ZodOptional ? "" : " (required)";
}

function defaultText(schema: z.core.$ZodType): string {
  if (!(schema instanceof z.ZodDefault)) return "";
  const v: unknown = schema.def.defaultValue;
  const show = (x: unknown): string => (Array.isArray(x) ? `[${x.map(show).join(", ")}]` : typeof x === "string" ? x : JSON.stringify(x));
  return `, default ${show(v)}`;
}
