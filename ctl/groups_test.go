package ctl

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/ctl/ctltest"
	"github.com/xvs-project/xvs/datapath"
)

func TestGroupEndpoints(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("wan1", "wan2", "lan")

	// One group in text form, one structured: objects in, objects out.
	var g1 api.GroupStatus
	body := h.must(201, "POST", api.PathGroups, `{"group":"group_id=1,type=select,bucket=weight:3,watch_port:wan1,actions=output:wan1,bucket=weight:1,watch_port:wan2,actions=output:wan2"}`)
	if err := json.Unmarshal([]byte(body), &g1); err != nil {
		t.Fatal(err)
	}
	if g1.ID == nil || *g1.ID != 1 || g1.Type != "select" || len(g1.Buckets) != 2 || *g1.Buckets[0].Weight != 3 ||
		g1.Buckets[1].WatchPort != "wan2" || len(g1.Stats) != 2 || !g1.Stats[0].Live {
		t.Fatalf("added group = %s", body)
	}
	h.must(201, "POST", api.PathGroups, `{"group_id":2,"type":"fast_failover","buckets":[
		{"watch_port":"wan1","actions":["output:wan1"]},{"watch_port":"wan2","actions":["mod_nw_tos:184","output:wan2"]}]}`)

	// Flows send to them; a flow to a missing group names the group.
	h.must(201, "POST", api.PathFlows, `[{"flow":"priority=10,tcp,actions=group:1"},{"flow":"priority=20,udp,actions=group:2"},{"flow":"arp,actions=kernel"}]`)
	code, body := h.do("POST", api.PathFlows, `[{"flow":"arp,actions=kernel"},{"flow":"ip,actions=group:9"}]`)
	if er := decodeError(t, body); code != 404 || er.Code != api.CodeNoSuchGroup || er.Field != "group" || er.Index == nil || *er.Index != 1 {
		t.Fatalf("flow to a missing group: %d %s", code, body)
	}

	// The flows count as the group's references.
	var all []api.GroupStatus
	json.Unmarshal([]byte(h.must(200, "GET", api.PathGroups, "")), &all)
	if len(all) != 2 || all[0].Flows != 1 || all[1].Flows != 1 {
		t.Fatalf("groups = %+v", all)
	}

	// A dead watch port shows in bucket liveness.
	h.backend.SetDeadPorts("wan1")
	var g2 api.GroupStatus
	json.Unmarshal([]byte(h.must(200, "GET", api.PathGroups+"/2", "")), &g2)
	if g2.Stats[0].Live || !g2.Stats[1].Live {
		t.Fatalf("liveness with wan1 dead: %+v", g2.Stats)
	}

	// mod-group keeps the flows.
	h.must(200, "PUT", api.PathGroups+"/1", `{"type":"all","buckets":[{"actions":["output:wan1"]},{"actions":["output:wan2"]}]}`)
	if n := len(h.backend.Flows()); n != 3 {
		t.Fatalf("%d flows after mod-group", n)
	}

	// Deleting a group deletes its flows, and says which.
	var del api.GroupDeleted
	json.Unmarshal([]byte(h.must(200, "DELETE", api.PathGroups+"/2", "")), &del)
	if del.Group.Text != "group_id=2,type=fast_failover,bucket=watch_port:wan1,actions=output:wan1,bucket=watch_port:wan2,actions=mod_nw_tos:184,output:wan2" ||
		len(del.RemovedFlows) != 1 || del.RemovedFlows[0].Text != "priority=20,udp,actions=group:2" {
		t.Fatalf("delete answered %+v", del)
	}
	if got := h.backendTexts(); !slices.Equal(got, []string{"priority=32768,arp,actions=kernel", "priority=10,tcp,actions=group:1"}) {
		t.Fatalf("flows after the delete: %v", got)
	}

	// Groups persist, before the flows that use them.
	st, err := h.store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.Groups, []string{"group_id=1,type=all,bucket=actions=output:wan1,bucket=actions=output:wan2"}) || len(st.Flows) != 2 {
		t.Fatalf("persisted %+v", st)
	}
	b := ctltest.New()
	srv, err := NewServer(Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"wan1", "wan2", "lan"} {
		h2 := &harness{t: t, srv: srv, backend: b}
		h2.addPorts(p)
	}
	if res, err := srv.Restore(st); err != nil || res.Groups != 1 || res.Flows != 2 {
		t.Fatalf("restore: %+v, %v", res, err)
	}

	// Replacing all groups drops the flows of the groups that go.
	var rep api.GroupsReplaced
	json.Unmarshal([]byte(h.must(200, "PUT", api.PathGroups, `[{"group":"group_id=5,type=indirect,bucket=output:lan"}]`)), &rep)
	if len(rep.Groups) != 1 || len(rep.RemovedFlows) != 1 || rep.RemovedFlows[0].Text != "priority=10,tcp,actions=group:1" {
		t.Fatalf("replace answered %+v", rep)
	}
}

func TestBundleIsOneTransaction(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("wan1", "wan2")
	h.must(201, "POST", api.PathBundle, `{"groups":[{"group":"group_id=1,type=select,bucket=output:wan1,bucket=output:wan2"}],
		"flows":[{"flow":"tcp,actions=group:1"}]}`)
	before := h.backendTexts()

	// The swap fails at its last flow: nothing changes.
	code, body := h.do("POST", api.PathBundle, `{"replace":true,
		"groups":[{"group":"group_id=2,type=indirect,bucket=output:wan2"}],
		"flows":[{"flow":"udp,actions=group:2"},{"flow":"tcp,actions=group:1"}]}`)
	if er := decodeError(t, body); code != 404 || er.Code != api.CodeNoSuchGroup || er.Index == nil || *er.Index != 1 {
		t.Fatalf("swap to a missing group: %d %s", code, body)
	}
	if got := h.backendTexts(); !slices.Equal(got, before) || len(h.backend.Groups()) != 1 || h.backend.Groups()[0].Group.ID != 1 {
		t.Fatalf("a failed bundle changed the switch: %v", got)
	}

	// The swap as meant: old groups and flows gone, new ones in.
	var res api.BundleResult
	json.Unmarshal([]byte(h.must(200, "POST", api.PathBundle, `{"replace":true,
		"groups":[{"group":"group_id=2,type=indirect,bucket=output:wan2"}],
		"flows":[{"flow":"udp,actions=group:2"}]}`)), &res)
	if len(res.Groups) != 1 || len(res.Flows) != 1 || res.Flows[0].ID == 0 {
		t.Fatalf("bundle answered %+v", res)
	}
	if got := h.backendTexts(); !slices.Equal(got, []string{"priority=32768,udp,actions=group:2"}) {
		t.Fatalf("after the swap: %v", got)
	}
	if gs := h.backend.Groups(); len(gs) != 1 || gs[0].Group.ID != 2 {
		t.Fatalf("groups after the swap: %+v", gs)
	}

	// A bad item names its list and index.
	code, body = h.do("POST", api.PathBundle, `{"flows":[{"flow":"udp,actions=drop"},{"flow":"udp,tp_dst=x,actions=drop"}]}`)
	if er := decodeError(t, body); code != 400 || er.Index == nil || *er.Index != 1 || er.Field != "tp_dst" {
		t.Fatalf("bad flow: %d %s", code, body)
	}
}

func TestTablesEndpoint(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("p0")
	h.must(201, "POST", api.PathFlows, `[{"flow":"udp,actions=goto_table:3"},{"flow":"table=3,actions=output:p0"},{"flow":"table=3,priority=1,tcp,actions=drop"}]`)
	var ts []api.TableStats
	json.Unmarshal([]byte(h.must(200, "GET", api.PathTables, "")), &ts)
	if len(ts) != 2 || ts[0].Table != 0 || ts[0].Flows != 1 || ts[1].Table != 3 || ts[1].Flows != 2 {
		t.Fatalf("tables = %+v", ts)
	}
	// dump-flows table=3 filters.
	if got := texts(decodeFlowList(t, h.must(200, "GET", api.PathFlows+"?match=table=3", ""))); len(got) != 2 {
		t.Fatalf("table=3 selects %v", got)
	}
}

func TestPipelineMetrics(t *testing.T) {
	h := newHarness(t, Options{})
	h.addPorts("wan1", "wan2")
	h.must(201, "POST", api.PathGroups, `{"group":"group_id=7,type=fast_failover,bucket=watch_port:wan1,actions=output:wan1,bucket=watch_port:wan2,actions=output:wan2"}`)
	h.must(201, "POST", api.PathFlows, `[{"flow":"udp,actions=goto_table:3"},{"flow":"table=3,udp,actions=group:7"}]`)
	h.backend.SetDeadPorts("wan1")
	h.backend.SetPollers([]datapath.PollerStats{{Queue: 1, CPU: 0, Handoffs: 5}})
	metrics := h.must(200, "GET", api.PathMetrics, "")
	for _, want := range []string{
		`xvs_port_live{port="wan1"} 0`,
		`xvs_port_live{port="wan2"} 1`,
		`xvs_group_packets_total{group="7"} 0`,
		`xvs_group_bucket_live{bucket="0",group="7"} 0`,
		`xvs_group_bucket_live{bucket="1",group="7"} 1`,
		`xvs_group_bucket_packets_total{bucket="1",group="7"} 0`,
		`xvs_table_flows{table="3"} 1`,
		`xvs_table_lookups_total{table="0"} 0`,
		`xvs_poller_handoffs_total{cpu="0",queue="1"} 5`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestFlowsByTable: flows list by table, then highest priority first, as
// ovs-ofctl dump-flows groups them.
func TestFlowsByTable(t *testing.T) {
	h := newHarness(t, Options{})
	h.must(201, "POST", api.PathFlows, `[{"flow":"table=1,priority=900,udp,actions=drop"},{"flow":"priority=5,ip,actions=goto_table:1"},{"flow":"priority=50,tcp,actions=drop"}]`)
	var fs []api.FlowStatus
	if err := json.Unmarshal([]byte(h.must(200, "GET", api.PathFlows, "")), &fs); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, f.Text)
	}
	want := []string{"priority=50,tcp,actions=drop", "priority=5,ip,actions=goto_table:1", "table=1,priority=900,udp,actions=drop"}
	if !slices.Equal(got, want) {
		t.Fatalf("flows %q, want %q", got, want)
	}
}
