package onnx_test

import (
	"context"
	"math"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/serving"
)

// Each run is reported through the request's serving.Timing as one
// execution of its rows, its time split in three phases (inputs, the
// ONNX Runtime run, outputs) that add up to exactly what
// servekit.model.inference.duration records for it: the protocol's
// statistics and the metrics tell the same story.
func TestTimingSplitsTheRunAsTheMetricTimesIt(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	m := loadFraud(t, onnx.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	var sum time.Duration
	for _, rows := range []int{1, 3} {
		var tm serving.Timing
		if _, err := m.Predict(serving.WithTiming(context.Background(), &tm), fraudRows(rows)); err != nil {
			t.Fatal(err)
		}
		v := tm.Values()
		if len(v.Executions) != 1 || v.Executions[0].Rows != int64(rows) {
			t.Fatalf("%d rows: executions %+v, want one of %d rows", rows, v.Executions, rows)
		}
		e := v.Executions[0]
		if e.ComputeInput <= 0 || e.ComputeInfer <= 0 || e.ComputeOutput <= 0 || v.ComputeInfer != e.ComputeInfer {
			t.Errorf("%d rows: phases %+v", rows, v)
		}
		sum += e.ComputeInput + e.ComputeInfer + e.ComputeOutput
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var recorded float64
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if mt.Name == "servekit.model.inference.duration" {
				for _, p := range mt.Data.(metricdata.Histogram[float64]).DataPoints {
					recorded += p.Sum
				}
			}
		}
	}
	if math.Abs(recorded-sum.Seconds()) > 1e-9 {
		t.Errorf("phases add up to %v, the metric recorded %vs", sum, recorded)
	}
}

// Predict reads the clock only for a reader (the duration histogram when
// a provider records it, a serving.Timing): each reader on its own still
// gets every run, and exactly.
func TestEachTimeReaderAloneGetsTheRun(t *testing.T) {
	t.Run("meter", func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		m := loadFraud(t, onnx.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
		const runs = 5
		began := time.Now()
		for range runs {
			if _, err := m.Predict(context.Background(), fraudRows(2)); err != nil {
				t.Fatal(err)
			}
		}
		took := time.Since(began)
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		var count uint64
		var sum float64
		for _, sm := range rm.ScopeMetrics {
			for _, mt := range sm.Metrics {
				if mt.Name == "servekit.model.inference.duration" {
					for _, p := range mt.Data.(metricdata.Histogram[float64]).DataPoints {
						count, sum = count+p.Count, sum+p.Sum
					}
				}
			}
		}
		if count != runs || sum <= 0 || sum > took.Seconds() {
			t.Errorf("histogram holds %d runs summing to %vs, want %d runs within the %v they took", count, sum, runs, took)
		}
	})
	t.Run("timing", func(t *testing.T) {
		m := loadFraud(t, onnx.WithMeterProvider(noop.NewMeterProvider()))
		var tm serving.Timing
		if _, err := m.Predict(serving.WithTiming(context.Background(), &tm), fraudRows(3)); err != nil {
			t.Fatal(err)
		}
		v := tm.Values()
		if len(v.Executions) != 1 || v.Executions[0].Rows != 3 {
			t.Fatalf("executions %+v, want one of 3 rows", v.Executions)
		}
		if e := v.Executions[0]; e.ComputeInput <= 0 || e.ComputeInfer <= 0 || e.ComputeOutput <= 0 {
			t.Errorf("phases %+v", e)
		}
	})
}
