// focal/cuda.cuh: every CUDA entry point of focal (include from .cu files; link CUDA's runtime).
//
//   losses          cuda/loss.cuh           classification (focal, BCE) and box losses, fused with
//                                           a deterministic reduction; single image and batch
//   matching        cuda/match.cuh          pairwise IoU, max-IoU matcher (single image and batch)
//   targets         cuda/targets.cuh        labels, box targets and positive counts from matches
//   box coding      cuda/coder.cuh          encode / decode with any coder policy
//   candidates      cuda/top_candidates.cuh per-level threshold + top-k
//   NMS             cuda/nms.cuh            greedy and class-aware bitmask NMS
//   post-processing cuda/postprocess.cuh    RetinaNet detections for a batch
// Conventions (docs/cuda.md): device views in, a cudaStream_t, a caller-provided workspace sized
// by <name>_workspace_size; arguments checked on the host before any launch; no allocation, no
// synchronization, the same bits on every run.
#pragma once

#include "cuda/coder.cuh"
#include "cuda/launch.cuh"
#include "cuda/loss.cuh"
#include "cuda/match.cuh"
#include "cuda/nms.cuh"
#include "cuda/postprocess.cuh"
#include "cuda/runtime.cuh"
#include "cuda/targets.cuh"
#include "cuda/top_candidates.cuh"
#include "cuda/view.cuh"
#include "cuda/workspace.cuh"
