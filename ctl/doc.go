// Package ctl is xvs's control plane: the REST API xvsd serves, and the
// state store that makes configuration survive a restart. The JSON it
// speaks is package api's (the wire contract, which imports nothing of
// xvs); convert.go is the one place that maps api's types to the switch's
// and back. The Go client is ctl/client.
//
// # Endpoints
//
//	GET    /v1/ports               ports, attached and absent ([]api.PortInfo)
//	POST   /v1/ports               add a port (api.PortRequest) -> 201 api.PortInfo
//	GET    /v1/ports/{name}        one port
//	DELETE /v1/ports/{name}        remove a port -> 204
//	GET    /v1/ports/{name}/stats  its counters (api.PortStats)
//	GET    /v1/flows[?match=F[&strict=true]]  flows ([]api.FlowStatus), by table, highest priority first
//	                               (Accept: text/plain: dump-flows lines)
//	POST   /v1/flows               add one flow (object) or a batch (array, one transaction) -> 201
//	PUT    /v1/flows               replace the whole table atomically (array) -> 200
//	                               (POST and PUT with "Prefer: return=minimal": api.FlowIDs, not the flows)
//	POST   /v1/flows/delete        delete the flows a filter selects (api.DeleteFlowsRequest) -> the deleted flows
//	GET    /v1/flows/{id}          one flow
//	DELETE /v1/flows/{id}          delete one flow -> it, as it was
//	PUT    /v1/ports/{name}/liveness  auto, live or dead (api.LivenessRequest) -> api.PortInfo
//	GET    /v1/groups              groups with counters ([]api.GroupStatus)
//	POST   /v1/groups              add one group or a batch (one transaction) -> 201
//	PUT    /v1/groups              replace every group atomically -> api.GroupsReplaced
//	GET    /v1/groups/{id}         one group; PUT modifies it, DELETE deletes it with the flows that use it
//	POST   /v1/bundle              groups and flows in one transaction (api.Bundle; "replace": a policy swap)
//	GET    /v1/tables              each table's flows, lookups and matches
//	POST   /v1/trace               what the switch does with a packet (api.TraceRequest -> api.Trace), changing nothing
//	GET    /v1/events              server-sent events (api.Event), resumable with Last-Event-ID (events.go)
//	GET    /v1/stats               switch counters (api.Stats)
//	GET    /v1/frames              where every UMEM frame is ([]api.FrameStats)
//	GET    /v1/health              api.HealthResponse: 200 ok, 503 unhealthy
//	GET    /v1/openapi.json        the OpenAPI 3 document of all of these (api.OpenAPI)
//	GET    /metrics                Prometheus exposition, read from Backend.Stats at scrape time
//
// A flow in a request is an api.Flow in one of its two forms, text
// ({"flow": "udp,tp_dst=7999,actions=output:p1"}) or structured
// ({"priority": 100, "match": {"udp": "", "tp_dst": "7999"}, "actions":
// ["output:p1"]}); an api.FlowStatus in a response has both, and the
// counters. The flow syntax is flowtable's: the structured form is parsed
// by flowtable.ParseFlowFields, which knows no JSON; ctl only copies the
// fields across and enforces the wire's rules (one form, no ID).
//
// # Model
//
// A Server sits in front of a Backend (in xvsd, the datapath.Switch). Every
// request that changes configuration (add or delete a port, set a port's
// liveness, add, replace or delete flows and groups) runs under one mutex:
//
//  1. the request is decoded and validated completely (unknown JSON fields,
//     keys given twice or in another case, bad flow syntax, ports that are
//     not configured): nothing is accepted that would fail later;
//  2. the Backend builds the change as one transaction (a batch of flows
//     is all or nothing; ctl never applies part of a request);
//  3. the Server saves the configuration the change makes (the configured
//     ports, attached or absent, with the XDP mode asked for, their
//     ofports and liveness overrides; the groups; the flows in text form
//     with their IDs; the next flow ID) to the Store before the change
//     goes live: what changed since the last save (the pipelines share
//     their unchanged Entries, so a walk of pointers finds it) appended to
//     the journal, or the whole state, an atomic replace of one JSON file,
//     when that is the smaller write (journal.go); flows and groups
//     through the Backend's commit hook (datapath.Switch.ApplyCommit),
//     ports and liveness by undoing the change if the save fails;
//  4. only then is the request answered. A change that cannot be saved
//     answers 507 not_saved and is not made.
//
// Because all of it happens under the mutex, the state file and its
// journal always describe the switch as it was after some complete sequence of changes,
// in the order they were made, and every change acknowledged is on disk.
// Reads (dumps, stats, health, metrics) do not take the mutex. Flows the
// switch removes on its own, when their idle or hard timeout passes, are
// saved the same way (datapath.Config.OnExpire, Server.FlowsExpired); if
// that save fails it is retried every second until it works, and Health
// says so meanwhile.
//
// Restore brings a saved State back at start: a port whose device is
// missing is configured absent (the switch attaches it when the device
// appears), every flow and group comes back with its ID, and an entry that
// is not valid is an error naming it (xvsd refuses to start) rather than
// something dropped and then saved away. Store.Lock keeps a second xvsd off
// the file; Store.CleanTemp removes what a crash during a save left.
//
// # Errors
//
// Every error a handler meets is given an api.ErrorCode by exactly one
// table, errorCodes, which tests it with errors.Is against the datapath and
// flowtable sentinels (the containerd errdefs/errhttp pattern); the code's
// status comes from api.ErrorKinds, so statusOf is a lookup and client and
// server share one table. An error that wraps no sentinel is internal
// (500). The body is an api.ErrorResponse: the message, the code, the
// field at fault when the error is a flowtable.ParseError or a request
// error, and the position of the bad item in an array request:
//
//	{"error":"in_port=p9: no such port","code":"no_such_port","field":"in_port","index":3}
//
// # Listening
//
// Listen opens the API's socket from an address like "unix:/run/xvs/xvsd.sock"
// or "tcp:127.0.0.1:6680". A TCP address that is not loopback is refused
// unless a bearer token is configured; with a token, every request must carry
// it (compared in constant time; SetToken changes it). NewHTTPServer gives
// the timeouts a server needs against slow clients; the event stream is
// exempt from them.
//
// Requests a web page could send are refused whatever the listener (see
// guard.go): a POST or PUT must be Content-Type application/json (415), a
// request from another Origin is 403, and on TCP without a token so is one
// whose Host is not the server's address, a loopback address or localhost
// (DNS rebinding). Request bodies take from a budget of twice the body
// limit as they arrive (budget.go): memory follows what is sent, not what
// is declared.
package ctl
