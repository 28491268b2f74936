// Post-processing defaults shared by the config schema (model.*) and the offline Detector, so
// `perceptd detect` and the daemon start from the same numbers. Pure: no imports.
//
// Boundary, said once: a candidate is kept when its score is above scoreThreshold (a score
// at or below it is dropped, in every decoder); NMS suppresses a box whose IoU with a better box of the
// same class is above iouThreshold; at most maxDetections survive, best score first.

export const DEFAULT_SCORE_THRESHOLD = 0.35;
export const DEFAULT_IOU_THRESHOLD = 0.5;
export const DEFAULT_MAX_DETECTIONS = 100;
