# Summarises bench/http-batch.sh output: per model and client count,
# batched/unbatched throughput over the rounds (min, median, max) and the
# median throughput and p99 of each.
function us(d) { if (d ~ /ms$/) return d * 1000; if (d ~ /µs$/) return d + 0; if (d ~ /s$/) return d * 1e6; return d }
function med(a, n,   i, j, t) {
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
/^#/ { next }
/throughput=/ {
	split($1, nm, "/"); cell = nm[1] "/" nm[2]; mode = nm[3]
	for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	n[cell, mode]++; tp[cell, mode, n[cell, mode]] = v["throughput"]; p99[cell, mode, n[cell, mode]] = us(v["p99"])
	cpu[cell, mode, n[cell, mode]] = v["cpu"] + 0
	if (!(cell in seen)) { seen[cell] = 1; order[++cells] = cell }
}
END {
	printf "%-12s %28s %12s %12s %26s %14s %14s\n", "cell", "batched/unbatched min-med-max", "unbatched", "batched",
		"CPU/req unb./bat. (µs)", "p99 unbatched", "p99 batched"
	for (c = 1; c <= cells; c++) {
		cell = order[c]; k = n[cell, "batched"] < n[cell, "unbatched"] ? n[cell, "batched"] : n[cell, "unbatched"]
		for (i = 1; i <= k; i++) {
			r[i] = tp[cell, "batched", i] / tp[cell, "unbatched", i]; a[i] = tp[cell, "unbatched", i]; b[i] = tp[cell, "batched", i]
			pa[i] = p99[cell, "unbatched", i]; pb[i] = p99[cell, "batched", i]; ca[i] = cpu[cell, "unbatched", i]; cb[i] = cpu[cell, "batched", i]
		}
		lo = r[1]; hi = r[1]; for (i = 2; i <= k; i++) { if (r[i] < lo) lo = r[i]; if (r[i] > hi) hi = r[i] }
		mca = med(ca, k); mcb = med(cb, k)
		printf "%-12s %10.2fx %5.2fx %5.2fx %9.0f/s %9.0f/s %8.1f/%5.1f = %5.2fx %11.0f µs %11.0f µs\n", cell, lo, med(r, k), hi,
			med(a, k), med(b, k), mca, mcb, mcb ? mca / mcb : 0, med(pa, k), med(pb, k)
	}
}
