// Configuration of the hazard assessment (src/perception/): per camera its geometry (camera
// model) and corridor; for the daemon the tracker and the alert rules. Imported by schema.ts,
// which places these in the config; kept apart so the perception keys read as one block.
//
// The checks that need more than one key (intrinsics given one way or the other, the
// horizon above the bottom of the image, thresholds ordered by severity) run the same code
// as the perception modules, so the config cannot accept what the daemon would refuse.
import { z } from "zod";
import { TOPICS, fixedRateHz, minFreshHz } from "../bus/topics.ts";
import { ALERT_KIND_NAMES, levelOrderIssue, type AlertKindName, type KindRules, type LevelThresholds } from "../perception/alerts.ts";
import { cameraModelIssues } from "../perception/camera-model.ts";
import { DEFAULT_TRACKER_CONFIG } from "../perception/tracker.ts";

const px = (what: string) => z.number().positive().max(100_000).optional().describe(`${what} (pixels)`);

export const GeometrySchema = z
  .object({
    imageWidthPx: z.number().int().min(16).max(8192).describe("frame width the intrinsics below are given for; frames of another size scale them"),
    imageHeightPx: z.number().int().min(16).max(8192).describe("frame height the intrinsics below are given for"),
    fx: px("focal length along x"),
    fy: px("focal length along y"),
    cx: z.number().optional().describe("principal point x (pixels)"),
    cy: z.number().optional().describe("principal point y (pixels)"),
    horizontalFovDeg: z.number().gt(1).lt(179).optional().describe("horizontal field of view instead of fx, fy, cx, cy: square pixels, principal point at the centre (degrees)"),
    heightM: z.number().describe("height of the lens above the ground (metres); must be positive"),
    pitchDeg: z.number().describe("downward tilt of the optical axis from level (degrees; positive: looking down)"),
    yawDeg: z.number().min(-90).max(90).default(0).describe("turn of the camera to the right of the corridor's forward direction (degrees)"),
    rollDeg: z.number().min(-45).max(45).default(0).describe("clockwise roll as seen from behind the camera (degrees)"),
    knownHeightsM: z
      .record(z.string(), z.number().positive().max(20))
      .default({})
      .describe("typical heights of classes by label (metres), for distances when a box's bottom edge is cut off; adds to or overrides the built-in ones (person 1.7, car 1.5, ...)"),
  })
  .strict()
  .superRefine((g, ctx) => {
    for (const issue of cameraModelIssues(g)) ctx.addIssue({ code: "custom", path: [issue.key], message: issue.message });
  })
  .describe("camera model for ground-plane distances: a pinhole camera above flat ground (no lens distortion)");

export const CorridorSchema = z
  .discriminatedUnion("type", [
    z
      .object({
        type: z.literal("ground"),
        widthM: z.number().positive().max(1000).describe("full width of the strip ahead (metres)"),
        minRangeM: z.number().min(0).default(0).describe("nearest forward distance (metres)"),
        maxRangeM: z.number().positive().max(1000).describe("furthest forward distance (metres)"),
        offsetM: z.number().default(0).describe("lateral position of the strip's centre line, right positive (metres)"),
        marginM: z.number().min(0).max(100).default(0.3).describe("hysteresis: an object inside leaves only once this far outside (metres)"),
      })
      .strict()
      .superRefine((c, ctx) => {
        if (c.maxRangeM <= c.minRangeM) ctx.addIssue({ code: "custom", path: ["maxRangeM"], message: `must exceed minRangeM (${c.minRangeM}), got ${c.maxRangeM}` });
      }),
    z
      .object({
        type: z.literal("image"),
        polygon: z
          .array(z.tuple([z.number(), z.number()]))
          .min(3)
          .describe("vertices [x, y] in source-frame pixels, in order; an object is inside when the middle of its box's bottom edge is"),
        marginPx: z.number().min(0).max(1000).default(8).describe("hysteresis: an object inside leaves only once this far outside (pixels)"),
      })
      .strict(),
  ])
  .describe("the region whose objects are hazard candidates; ground needs geometry, image does not. Without a corridor the camera raises no alerts");

const levelSchema = (def: LevelThresholds | undefined, level: string) =>
  z
    .object({
      ttcS: z.number().positive().max(60).optional().describe("time to collision at or below this (seconds)"),
      rangeM: z.number().positive().max(1000).optional().describe("distance at or below this (metres)"),
    })
    .strict()
    .default(def ?? {})
    .describe(`${level}: either threshold is enough; a level given replaces its default whole`);

function kindSchema(name: AlertKindName, def: KindRules) {
  return z
    .object({
      classes: z.array(z.string().min(1)).default(def.classes).describe(`class labels that are ${name}s`),
      info: levelSchema(def.info, "info"),
      warning: levelSchema(def.warning, "warning"),
      critical: levelSchema(def.critical, "critical"),
    })
    .strict()
    .superRefine((k, ctx) => {
      const issue = levelOrderIssue(k);
      if (issue) ctx.addIssue({ code: "custom", path: [], message: issue });
    })
    .prefault({})
    .describe(`thresholds of ${name} alerts`);
}

/** Default rules: a pedestrian or cyclist within a few metres is critical whatever its speed; vehicles mostly by time to collision. */
export const DEFAULT_KIND_RULES: Record<AlertKindName, KindRules> = {
  pedestrian: { classes: ["person"], info: { rangeM: 30 }, warning: { ttcS: 4, rangeM: 12 }, critical: { ttcS: 2, rangeM: 5 } },
  cyclist: { classes: ["bicycle", "motorcycle"], info: { rangeM: 40 }, warning: { ttcS: 4, rangeM: 15 }, critical: { ttcS: 2, rangeM: 6 } },
  vehicle: { classes: ["car", "bus", "truck"], info: { rangeM: 50 }, warning: { ttcS: 4, rangeM: 10 }, critical: { ttcS: 2, rangeM: 4 } },
  obstacle: { classes: [], info: { rangeM: 30 }, warning: { ttcS: 4, rangeM: 10 }, critical: { ttcS: 2, rangeM: 4 } },
};

export const AlertsSchema = z
  .object({
    publishHz: z
      .number()
      .min(minFreshHz("alerts"))
      .max(50)
      .default(fixedRateHz("alerts"))
      .describe(`rate at which the active alert set is re-sent (it also goes out at once on any change); at least ${minFreshHz("alerts")} Hz so subscribers (alerts staleAfterMs ${TOPICS.alerts.staleAfterMs} ms) never see it stale`),
    raiseFrames: z.number().int().min(1).max(30).default(2).describe("consecutive processed frames that ask for an alert (or a higher level) before it is raised: the most an alert lags"),
    clearFrames: z.number().int().min(1).max(30).default(4).describe("consecutive processed frames below its thresholds before an alert is lowered or cleared: the most a clear lags"),
    hysteresis: z.number().min(0).max(1).default(0.15).describe("a level held is kept until the object is beyond its thresholds by this fraction (0.15: a 12 m threshold is left beyond 13.8 m)"),
    minClosingSpeedMps: z.number().min(0).max(50).default(0.3).describe("closing slower than this gives no time to collision (metres per second)"),
    kinds: z
      .object(Object.fromEntries(ALERT_KIND_NAMES.map((k) => [k, kindSchema(k, DEFAULT_KIND_RULES[k])])) as Record<AlertKindName, ReturnType<typeof kindSchema>>)
      .strict()
      .superRefine(classesOnce)
      .prefault({})
      .describe("classes and thresholds per alert kind; levels info < warning < critical"),
  })
  .strict()
  .describe("hazard alerts of cameras with a corridor: levels, hysteresis and persistence");

function classesOnce(kinds: Record<AlertKindName, { classes: string[] }>, ctx: z.RefinementCtx): void {
  const owner = new Map<string, AlertKindName>();
  for (const k of ALERT_KIND_NAMES) {
    kinds[k].classes.forEach((c, i) => {
      const prev = owner.get(c);
      if (prev) ctx.addIssue({ code: "custom", path: [k, "classes", i], message: `class "${c}" is already a ${prev} class` });
      else owner.set(c, k);
    });
  }
}

const t = DEFAULT_TRACKER_CONFIG;
export const TrackingSchema = z
  .object({
    highScore: z.number().min(0).max(1).default(t.highScore).describe("detections scoring at least this are matched first and may start tracks; weaker ones (down to model.scoreThreshold) only extend confirmed tracks"),
    matchIou: z.number().min(0.01).max(1).default(t.matchIou).describe("least overlap (IoU) of a predicted track box and a detection to associate them"),
    lowMatchIou: z.number().min(0.01).max(1).default(t.lowMatchIou).describe("least overlap in the second pass (weak detections)"),
    minHits: z.number().int().min(1).max(30).default(t.minHits).describe("detections before a track is confirmed (and may carry an id on the bus or alert)"),
    maxMisses: z.number().int().min(0).max(100).default(t.maxMisses).describe("consecutive frames without a detection before a confirmed track is lost"),
  })
  .strict()
  .describe("multi-object tracker (every camera)");

export type GeometryConfig = z.infer<typeof GeometrySchema>;
export type CorridorConfig = z.infer<typeof CorridorSchema>;
export type AlertsConfig = z.infer<typeof AlertsSchema>;
export type TrackingConfig = z.infer<typeof TrackingSchema>;
