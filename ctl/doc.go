// Package ctl is xvs's control plane: the REST API xvsd serves, the Go client
// xvsctl uses, the JSON types both speak, and the state store that makes
// configuration survive a restart.
//
// # Endpoints
//
//	GET    /v1/ports               ports ([]datapath.PortInfo)
//	POST   /v1/ports               add a port (PortRequest) -> 201 PortInfo
//	GET    /v1/ports/{name}        one port
//	DELETE /v1/ports/{name}        remove a port -> 204
//	GET    /v1/ports/{name}/stats  its counters (datapath.PortStats)
//	GET    /v1/flows[?match=F[&strict=true]]  flows ([]FlowStatus), highest priority first
//	POST   /v1/flows               add one flow (object) or a batch (array, one transaction) -> 201
//	PUT    /v1/flows               replace the whole table atomically (array) -> 200
//	                               (POST and PUT with "Prefer: return=minimal": FlowIDs, not the flows)
//	POST   /v1/flows/delete        delete the flows a filter selects (DeleteFlowsRequest) -> the deleted flows
//	GET    /v1/flows/{id}          one flow
//	DELETE /v1/flows/{id}          delete one flow -> it, as it was
//	GET    /v1/stats               switch counters (datapath.Stats)
//	GET    /v1/health              HealthResponse: 200 ok, 503 unhealthy
//	GET    /metrics                Prometheus exposition, read from Backend.Stats at scrape time
//
// A flow in a request is a flowtable.FlowJSON in one of its two forms, text
// ({"flow": "udp,tp_dst=7999,actions=output:p1"}) or structured
// ({"priority": 100, "match": {"udp": "", "tp_dst": "7999"}, "actions":
// ["output:p1"]}); a FlowStatus in a response has both, and the counters.
//
// # Model
//
// A Server sits in front of a Backend (in xvsd, the datapath.Switch). Every
// request that changes configuration (add or delete a port, add, replace or
// delete flows) runs under one mutex:
//
//  1. the request is decoded and validated completely (unknown JSON fields,
//     bad flow syntax, ports that do not exist): nothing is accepted that
//     would fail later;
//  2. the Backend applies it as one transaction (a batch of flows is all or
//     nothing; the Backend guarantees atomicity, ctl never applies part of a
//     request);
//  3. the Server persists the resulting configuration (ports with the XDP
//     mode that was asked for, flows in their text form) to the Store, an
//     atomic replace of one JSON file.
//
// Because all three steps happen under the mutex, the state file always
// describes the switch as it was after some complete sequence of changes, in
// the order they were made. Reads (dumps, stats, health, metrics) do not take
// the mutex. Flows the switch removes on its own, when their idle or hard
// timeout passes, are persisted the same way: the switch reports them
// (datapath.Config.OnExpire) and Server.FlowsExpired saves under the mutex.
//
// # Errors
//
// Every error a handler meets is turned into an HTTP status by exactly one
// function, statusOf, which tests it with errors.Is against the datapath and
// flowtable sentinels (the containerd errdefs/errhttp pattern). The response
// body is an ErrorResponse: the message, the field at fault when the error is
// a flowtable.ParseError, and the position of the bad item in an array
// request. Client turns such a body back into an *APIError.
//
// # Listening
//
// Listen opens the API's socket from an address like "unix:/run/xvs/xvsd.sock"
// or "tcp:127.0.0.1:6680". A TCP address that is not loopback is refused
// unless a bearer token is configured; with a token, every request must carry
// it (compared in constant time).
package ctl
