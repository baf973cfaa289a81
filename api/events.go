package api

import "time"

// Event is one event of GET /v1/events, a stream of server-sent events
// (text/event-stream): each is sent as
//
//	id: ID
//	event: TYPE
//	data: {the Event as JSON}
//
// IDs count up from 1 for the life of the server. A client that
// reconnects with the header Last-Event-ID: N gets every event after N
// still in the server's backlog (EventBacklog events), then the new ones;
// if some after N are gone, the stream starts with an event of type
// EventLost. A controller follows the switch with it instead of polling.
type Event struct {
	ID   uint64    `json:"id"`
	Type EventType `json:"type"`
	At   time.Time `json:"at"`

	Port    string `json:"port,omitempty"`    // port events
	LinkUp  *bool  `json:"link_up,omitempty"` // EventLink
	Carrier *bool  `json:"carrier,omitempty"` // EventLink
	Live    *bool  `json:"live,omitempty"`    // EventPortAdded, EventLiveness, EventGroupBucket
	Reason  string `json:"reason,omitempty"`  // EventLiveness: carrier, no_carrier, admin_down, override or absent

	Group  *uint32 `json:"group,omitempty"`  // group events
	Bucket *int    `json:"bucket,omitempty"` // EventGroupBucket
	From   *int    `json:"from,omitempty"`   // EventFailover: the bucket used before, -1 for none
	To     *int    `json:"to,omitempty"`     // EventFailover: the bucket used now, -1 for none

	Flows    []uint64 `json:"flows,omitempty"`    // flow IDs: expired, added or removed
	Removed  []uint64 `json:"removed,omitempty"`  // EventFlowsChanged: the IDs of flows removed
	Replaced bool     `json:"replaced,omitempty"` // EventFlowsChanged: every flow was replaced (PUT /v1/flows, a bundle with replace)
	Request  string   `json:"request,omitempty"`  // EventFlowsChanged, EventGroupsChanged: "METHOD PATH" of the request
	Missed   uint64   `json:"missed,omitempty"`   // EventLost: how many events the client missed
}

// EventType names what an Event says.
type EventType string

const (
	EventPortAdded     EventType = "port_added"     // port, live
	EventPortRemoved   EventType = "port_removed"   // port
	EventLink          EventType = "link"           // port, link_up, carrier: what netlink said of the netdev
	EventLiveness      EventType = "liveness"       // port, live, reason
	EventFailover      EventType = "group_failover" // group, from, to: a fast_failover group moved to another bucket
	EventGroupBucket   EventType = "group_bucket"   // group, bucket, live: a bucket of another group became live or dead
	EventFlowsExpired  EventType = "flows_expired"  // flows: removed by their idle or hard timeout
	EventFlowsChanged  EventType = "flows_changed"  // flows (added), removed, request
	EventGroupsChanged EventType = "groups_changed" // request
	EventLost          EventType = "lost"           // missed: events gone from the backlog before the client asked
)

// EventBacklog is how many past events the server keeps for clients that
// reconnect.
const EventBacklog = 4096
