package api

// API paths, relative to the server root. A port's paths are PathPorts +
// "/" + its name (escaped as a path segment), a flow's PathFlows + "/" + its
// ID in decimal, a group's PathGroups + "/" + its ID in decimal (GET, PUT
// to modify it, DELETE).
const (
	PathPorts       = "/v1/ports"        // GET: []PortInfo; POST PortRequest: PortInfo
	PathFlows       = "/v1/flows"        // GET: []FlowStatus; POST, PUT: Flow or []Flow
	PathFlowsDelete = "/v1/flows/delete" // POST DeleteFlowsRequest: []FlowStatus
	PathGroups      = "/v1/groups"       // GET: []GroupStatus; POST Group or []Group; PUT []Group: GroupsReplaced
	PathBundle      = "/v1/bundle"       // POST Bundle: BundleResult
	PathTables      = "/v1/tables"       // GET: []TableStats
	PathTrace       = "/v1/trace"        // POST TraceRequest: Trace
	PathEvents      = "/v1/events"       // GET: text/event-stream of Event
	PathStats       = "/v1/stats"        // GET: Stats
	PathFrames      = "/v1/frames"       // GET: []FrameStats
	PathHealth      = "/v1/health"       // GET: HealthResponse
	PathOpenAPI     = "/v1/openapi.json" // GET: the OpenAPI 3 document of /v1
	PathMetrics     = "/metrics"         // GET: Prometheus text exposition
)

// Suffixes of a port's path: its counters (GET /v1/ports/{name}/stats)
// and its liveness (PUT /v1/ports/{name}/liveness LivenessRequest:
// PortInfo).
const (
	PortStatsSuffix    = "/stats"
	PortLivenessSuffix = "/liveness"
)

// DefaultSocket is where xvsd listens and clients connect by default.
const DefaultSocket = "/run/xvs/xvsd.sock"
