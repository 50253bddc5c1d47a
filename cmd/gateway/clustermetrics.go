package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mediagw/mediagw/cluster"
)

// registerClusterMetrics exports the cluster registry's view and its Redis
// traffic.
func registerClusterMetrics(reg prometheus.Registerer, cl *cluster.Cluster) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mediagw_cluster_nodes",
			Help: "Alive nodes of the cluster, this one included (as of the last heartbeat).",
		}, func() float64 { return float64(len(cl.Nodes())) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mediagw_cluster_redis_round_trips_total",
			Help: "Round trips to the cluster registry (batches of updates and events, heartbeats, claims, lookups).",
		}, func() float64 { return float64(cl.Stats().RoundTrips) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mediagw_cluster_errors_total",
			Help: "Failed round trips to the cluster registry (the calls go on; the registry is rewritten when it is back).",
		}, func() float64 { return float64(cl.Stats().Errors) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mediagw_cluster_events_received_total",
			Help: "Events of other nodes received for this node's event streams.",
		}, func() float64 { return float64(cl.Stats().EventsIn) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mediagw_cluster_unclaimed_conferences_total",
			Help: "Conferences made while the registry was away, claimed when it came back.",
		}, func() float64 { return float64(cl.Stats().Unclaimed) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mediagw_cluster_nodes_cleaned_total",
			Help: "Dead nodes whose records this node cleaned.",
		}, func() float64 { return float64(cl.Stats().Reaped) }),
	)
}
