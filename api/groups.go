package api

// Group is a group as the API speaks it, in one of two forms, like Flow.
//
// Text form: only Text is set, in the add-group syntax of ovs-ofctl:
//
//	{"group": "group_id=1,type=select,bucket=weight:3,actions=output:wan1,bucket=weight:1,actions=output:wan2"}
//
// Structured form: the other fields; Type is all, select, indirect or
// fast_failover (ff), and each bucket's Actions a list of single actions
// in the text syntax, written in action-set order (strip_vlan, push_vlan,
// dec_ttl, rewrites, then one output, in_port, group or resubmit):
//
//	{"group_id": 1, "type": "select", "buckets": [
//	  {"weight": 3, "watch_port": "wan1", "actions": ["output:wan1"]},
//	  {"weight": 1, "watch_port": "wan2", "actions": ["output:wan2"]}]}
//
// A request gives one form, not both. A response fills both, Text in
// canonical form (the weight of every select bucket shown).
type Group struct {
	ID      *uint32  `json:"group_id,omitempty"` // 0..4294967039
	Type    string   `json:"type,omitempty"`
	Buckets []Bucket `json:"buckets,omitempty"`
	Text    string   `json:"group,omitempty"`
}

// Bucket is one bucket of a Group.
type Bucket struct {
	Weight    *uint16  `json:"weight,omitempty"`     // select only; default 1
	WatchPort string   `json:"watch_port,omitempty"` // live only while this port is; every fast_failover bucket has one
	Actions   []string `json:"actions"`
}

// GroupStatus is an installed group, in both forms, with its counters.
type GroupStatus struct {
	Group
	Flows     int           `json:"flows"` // flows that send to it (OpenFlow's ref_count)
	Packets   uint64        `json:"packets"`
	Bytes     uint64        `json:"bytes"`
	DurationS float64       `json:"duration_s"` // since the group was added or last modified
	Stats     []BucketStats `json:"bucket_stats"`
}

// BucketStats are one bucket's counters, in bucket order.
type BucketStats struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// Live says whether the bucket may be picked now: it has no watch
	// port, or its watch port is live.
	Live bool `json:"live"`
}

// GroupDeleted answers DELETE /v1/groups/{id}: the group as it was, and
// the flows that sent to it, which went with it (as OpenFlow's group
// delete does), as they were.
type GroupDeleted struct {
	Group        GroupStatus  `json:"group"`
	RemovedFlows []FlowStatus `json:"removed_flows"`
}

// GroupsReplaced answers PUT /v1/groups: the groups now installed, and
// the flows removed because the groups they sent to are gone.
type GroupsReplaced struct {
	Groups       []GroupStatus `json:"groups"`
	RemovedFlows []FlowStatus  `json:"removed_flows"`
}

// Bundle is one transaction on groups and flows together, POST
// /v1/bundle: without Replace, Groups are added, then Flows (which may send
// to them); with Replace, the switch's groups and flows become exactly
// these, atomically (a policy swap: no packet sees a mix). All of it applies
// or none; an error about an item names "groups" or "flows" and its index.
type Bundle struct {
	Replace bool    `json:"replace,omitempty"`
	Groups  []Group `json:"groups,omitempty"`
	Flows   []Flow  `json:"flows,omitempty"`
}

// BundleResult answers POST /v1/bundle: the groups and flows as installed.
type BundleResult struct {
	Groups []GroupStatus `json:"groups"`
	Flows  []FlowStatus  `json:"flows"`
}

// TableStats are one OpenFlow table's counters, GET /v1/tables, as
// ovs-ofctl dump-tables shows them. Every packet the XDP program classifies
// is a lookup in table 0; the other tables count the lookups the pipeline
// makes in them (goto_table, resubmit).
type TableStats struct {
	Table   uint8  `json:"table"`
	Flows   int    `json:"flows"`
	Lookups uint64 `json:"lookups"`
	Matched uint64 `json:"matched"`
}
