// Fetches a pinned npm package tarball through npm itself (so the user's registry and proxy
// settings apply), checks its integrity hash against the pin, and extracts selected files.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import tar from "tar-stream";

const run = promisify(execFile);

export interface PinnedPackage {
  name: string;
  version: string;
  /** npm's Subresource Integrity string, e.g. "sha512-..." */
  integrity: string;
}

export function integrityOf(bytes: Uint8Array, algorithm = "sha512"): string {
  return `${algorithm}-${createHash(algorithm).update(bytes).digest("base64")}`;
}

function tarballName(pkg: PinnedPackage): string {
  return `${pkg.name.replace(/^@/, "").replace("/", "-")}-${pkg.version}.tgz`;
}

/** Returns the verified tarball bytes, downloading into cacheDir when not already there. */
export async function fetchPinnedTarball(pkg: PinnedPackage, cacheDir: string, log: (msg: string) => void): Promise<Uint8Array> {
  const algorithm = pkg.integrity.split("-")[0];
  const cached = join(cacheDir, tarballName(pkg));
  try {
    const bytes = await readFile(cached);
    if (integrityOf(bytes, algorithm) === pkg.integrity) return bytes;
    log(`cached ${cached} does not match the pinned integrity; fetching again`);
  } catch {
    // not cached yet
  }
  await mkdir(cacheDir, { recursive: true });
  const tmp = join(cacheDir, `.pack-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  log(`fetching ${pkg.name}@${pkg.version} from the npm registry`);
  try {
    await run("npm", ["pack", `${pkg.name}@${pkg.version}`, "--pack-destination", tmp, "--silent"], { maxBuffer: 16 << 20 });
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    const err = e as { stderr?: string; message: string };
    throw new Error(`npm pack ${pkg.name}@${pkg.version} failed: ${(err.stderr || err.message).trim().split("\n").slice(-3).join(" ")}`);
  }
  const bytes = await readFile(join(tmp, tarballName(pkg)));
  const got = integrityOf(bytes, algorithm);
  if (got !== pkg.integrity) {
    await rm(tmp, { recursive: true, force: true });
    throw new Error(`${pkg.name}@${pkg.version}: tarball integrity ${got} does not match the pinned ${pkg.integrity}`);
  }
  await rename(join(tmp, tarballName(pkg)), cached);
  await rm(tmp, { recursive: true, force: true });
  return bytes;
}

/** Extracts the named entries (paths inside the tarball, e.g. "package/models/x.json"). */
export async function extractFiles(tgz: Uint8Array, wanted: string[], destDir: string): Promise<Map<string, string>> {
  const tarBytes = gunzipSync(tgz);
  const found = new Map<string, Buffer>();
  await new Promise<void>((resolvePromise, reject) => {
    const ex = tar.extract();
    ex.on("entry", (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c: unknown) => {
        if (wanted.includes(header.name)) chunks.push(c as Buffer);
      });
      stream.on("end", () => {
        if (wanted.includes(header.name)) found.set(header.name, Buffer.concat(chunks));
        next();
      });
      stream.resume();
    });
    ex.on("finish", resolvePromise);
    ex.on("error", reject);
    ex.end(tarBytes);
  });
  const missing = wanted.filter((w) => !found.has(w));
  if (missing.length) throw new Error(`package tarball lacks ${missing.join(", ")}`);
  await mkdir(destDir, { recursive: true });
  const out = new Map<string, string>();
  for (const [name, bytes] of found) {
    const dest = join(destDir, name.split("/").pop()!);
    await writeFile(`${dest}.tmp`, bytes);
    await rename(`${dest}.tmp`, dest);
    out.set(name, dest);
  }
  return out;
}
