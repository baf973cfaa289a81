package flowtable

import (
	"fmt"
	"sync"
	"testing"
)

// Parses running at once each get a builder of their own from the pool:
// every flow, and every error, comes out as a parse alone gives it.
func TestParseConcurrent(t *testing.T) {
	var texts []string
	for i := range 64 {
		texts = append(texts,
			fmt.Sprintf("priority=%d,udp,in_port=p%d,nw_dst=10.0.%d.1,tp_dst=%d,actions=mod_tp_dst:%d,output:p%d", i, i%7+1, i, 1000+i, 2000+i, i%5+1),
			fmt.Sprintf("tcp,eth_src=02:00:00:00:00:%02x,tcp_dst=%d,actions=set_field:%d->tcp_src,NORMAL", i, i, i),
			fmt.Sprintf("ip,ip_dst=10.%d.0.0/16,nw_dst=10.%d.0.0/16,actions=drop", i, i+1),
			fmt.Sprintf("tp_dst=%d,actions=output:p%d", i, i),
		)
	}
	type result struct{ flow, err string }
	parse := func(s string) result {
		f, err := ParseFlow(s)
		if err != nil {
			return result{err: err.Error()}
		}
		return result{flow: f.String()}
	}
	want := make([]result, len(texts))
	for i, s := range texts {
		want[i] = parse(s)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for round := range 50 {
				for j := range texts {
					i := (j*7 + g*13 + round) % len(texts)
					if got := parse(texts[i]); got != want[i] {
						select {
						case errs <- fmt.Sprintf("ParseFlow(%q) = %+v; alone %+v", texts[i], got, want[i]):
						default:
						}
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
