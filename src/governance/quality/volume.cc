// Volume anomaly detection: Elementary's z-score over same hour-of-week buckets.
#include <cmath>

#include "governance/quality/internal.h"

namespace clicklake::quality {

VolumeVerdict EvaluateVolume(double observed, const std::vector<double>& training, const CheckConfig& check) {
  VolumeVerdict v;
  v.training_size = static_cast<int>(training.size());
  if (v.training_size < std::max(2, check.min_training_size)) {
    v.training = true;
    return v;
  }
  double sum = 0;
  for (double x : training) sum += x;
  v.mean = sum / training.size();
  double ss = 0;
  for (double x : training) ss += (x - v.mean) * (x - v.mean);
  v.stddev = std::sqrt(ss / (training.size() - 1));
  const double diff = observed - v.mean;
  if (v.stddev > 0) {
    v.z = diff / v.stddev;
  } else {
    v.z = diff == 0 ? 0 : (diff > 0 ? INFINITY : -INFINITY);
  }
  v.expected_min = std::max(0.0, v.mean - check.threshold * v.stddev);
  v.expected_max = v.mean + check.threshold * v.stddev;
  // Small changes never alarm, however tight the history (Elementary's
  // ignore_small_changes): relative to the mean, at least one row.
  const double relative = std::fabs(diff) / std::max(v.mean, 1.0);
  const bool direction = check.direction == "both" || (check.direction == "up" && diff > 0) ||
                         (check.direction == "down" && diff < 0);
  v.anomaly = std::fabs(v.z) > check.threshold && relative >= check.min_relative_change && direction;
  return v;
}

}  // namespace clicklake::quality
