package ctl

import (
	"bufio"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/xvs-project/xvs/datapath"
)

// GET /v1/flows with "Accept: text/plain" answers the flows as ovs-ofctl
// dump-flows prints them, one line each, which is what xvsctl dump-flows
// shows: a dump of 160k flows as JSON costs the server its encoding and
// the client its decoding, several times the work of the lines.

// wantsText reports whether the request asks for text/plain rather than
// JSON: text/plain listed, and application/json not listed with a higher
// q.
func wantsText(r *http.Request) bool {
	text, json := -1.0, -1.0
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if s, ok := params["q"]; ok {
				if q, err = strconv.ParseFloat(s, 64); err != nil {
					continue
				}
			}
			switch mt {
			case "text/plain":
				text = max(text, q)
			case "application/json", "application/*", "*/*":
				json = max(json, q)
			}
		}
	}
	return text > 0 && text > json
}

// replyDump writes flows as dump-flows lines; ovs leaves out the
// datapath= field, which ovs-ofctl does not read.
func (s *Server) replyDump(w http.ResponseWriter, flows []datapath.FlowInfo, ovs bool) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	var line []byte
	for _, fi := range flows {
		line = appendDumpLine(line[:0], fi, ovs)
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			s.log.Debug("write response", "err", err)
			return
		}
	}
	if err := bw.Flush(); err != nil {
		s.log.Debug("write response", "err", err)
	}
}

// appendDumpLine appends fi as a line of ovs-ofctl dump-flows output:
//
//	cookie=0x0, duration=1.234s, table=0, n_packets=10, n_bytes=640, idle_age=2, datapath=xdp, priority=100,udp,tp_dst=7999 actions=output:p1
//
// ovs leaves out the datapath= field.
func appendDumpLine(b []byte, fi datapath.FlowInfo, ovs bool) []byte {
	f := fi.Flow
	b = append(b, " cookie=0x"...)
	b = strconv.AppendUint(b, f.Cookie, 16)
	b = append(b, ", duration="...)
	b = strconv.AppendFloat(b, fi.Duration.Seconds(), 'f', 3, 64)
	b = append(b, "s, table="...)
	b = strconv.AppendUint(b, uint64(f.Table), 10)
	b = append(b, ", n_packets="...)
	b = strconv.AppendUint(b, fi.Packets, 10)
	b = append(b, ", n_bytes="...)
	b = strconv.AppendUint(b, fi.Bytes, 10)
	b = append(b, ", "...)
	if f.IdleTimeout != 0 {
		b = append(b, "idle_timeout="...)
		b = strconv.AppendUint(b, uint64(f.IdleTimeout), 10)
		b = append(b, ", "...)
	}
	if f.HardTimeout != 0 {
		b = append(b, "hard_timeout="...)
		b = strconv.AppendUint(b, uint64(f.HardTimeout), 10)
		b = append(b, ", "...)
	}
	b = append(b, "idle_age="...)
	b = strconv.AppendInt(b, int64(fi.IdleAge.Seconds()), 10)
	b = append(b, ", "...)
	if fi.Datapath != "" && !ovs {
		b = append(b, "datapath="...)
		b = append(b, fi.Datapath...)
		if fi.DatapathReason != "" {
			b = append(b, '(')
			b = append(b, fi.DatapathReason...)
			b = append(b, ')')
		}
		b = append(b, ", "...)
	}
	// The canonical text is [cookie=C,][table=T,][idle_timeout=N,]
	// [hard_timeout=N,]priority=P[,MATCH],actions=A: the counters above
	// took the place of what comes before priority=.
	text := infoText(fi)
	i := strings.Index(text, "priority=")
	j := strings.Index(text, ",actions=")
	b = append(b, text[i:j]...)
	b = append(b, " actions="...)
	return append(b, text[j+len(",actions="):]...)
}
