package quality

import "slices"

// Metric names a performance metric. The package doc defines each, and
// which are estimated without labels.
type Metric string

// The metrics. Classification metrics other than AUC and the losses read
// the predicted class: the positive class when the score reaches the
// task's threshold (binary), the class of the largest score (multiclass).
const (
	Accuracy  Metric = "accuracy"  // share of correct predictions
	Precision Metric = "precision" // binary: TP/(TP+FP); multiclass: macro average
	Recall    Metric = "recall"    // binary: TP/(TP+FN); multiclass: macro average
	F1        Metric = "f1"        // binary: 2TP/(2TP+FP+FN); multiclass: macro average
	AUC       Metric = "roc_auc"   // area under the ROC curve; multiclass: one-vs-rest, macro
	LogLoss   Metric = "log_loss"  // mean negative log-likelihood (cross-entropy)
	Brier     Metric = "brier"     // binary: mean squared error of the score
	// CalibrationError is the expected calibration error: the share-weighted
	// gap between the mean score and the share of positives (multiclass: of
	// correct top predictions) in 10 equal-width bins of the score.
	CalibrationError Metric = "calibration_error"
	MAE              Metric = "mae"  // mean absolute error
	RMSE             Metric = "rmse" // root mean squared error
	MAPE             Metric = "mape" // mean absolute percentage error, as a fraction
	R2               Metric = "r2"   // coefficient of determination
)

// metricIndex orders the metrics in results; each task uses a subset.
var allMetrics = []Metric{Accuracy, Precision, Recall, F1, AUC, LogLoss, Brier, CalibrationError, MAE, RMSE, MAPE, R2}

// LowerIsBetter reports whether a smaller value of m is better: the
// losses and errors.
func (m Metric) LowerIsBetter() bool {
	switch m {
	case LogLoss, Brier, CalibrationError, MAE, RMSE, MAPE:
		return true
	}
	return false
}

func (m Metric) valid() bool { return slices.Contains(allMetrics, m) }

// values holds one computation's metrics, indexed like allMetrics; a
// metric that is undefined (or not computed) is absent.
type values struct {
	v   [12]float64
	has uint16
}

func idx(m Metric) int { return slices.Index(allMetrics, m) }

func (v *values) set(m Metric, x float64) {
	i := idx(m)
	if x != x { // NaN: undefined
		return
	}
	v.v[i] = x
	v.has |= 1 << i
}

func (v *values) get(m Metric) (float64, bool) {
	i := idx(m)
	if i < 0 || v.has&(1<<i) == 0 {
		return 0, false
	}
	return v.v[i], true
}
