package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strconv"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
)

// Example applies objects from a YAML file, all or nothing, then follows every later change to
// services. It needs a running server, so it is compiled but not run.
func Example() {
	ctx := context.Background()
	c, err := client.New(client.Options{Server: "http://127.0.0.1:8080", Token: os.Getenv("FLOTILLA_TOKEN")})
	if err != nil {
		log.Fatal(err)
	}
	data, err := os.ReadFile("fleet.yaml")
	if err != nil {
		log.Fatal(err)
	}
	objs, err := v1.LoadYAML("fleet.yaml", data) // decode, default and validate locally first
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Apply(ctx, objs)
	switch {
	case client.IsInvalid(err):
		st, _ := client.StatusOf(err)
		for _, f := range st.Fields {
			fmt.Println(f.Path, f.Message) // nothing was written
		}
		return
	case err != nil:
		log.Fatal(err)
	}
	// A resourceVersion is the sequence number of the event that wrote the object, so the
	// highest one is where the watch starts: only changes after this apply are shown.
	var last int64
	for _, r := range res.Items {
		fmt.Println(r.Kind, r.Name, r.Action)
		if rv, _ := strconv.ParseInt(r.ResourceVersion, 10, 64); rv > last {
			last = rv
		}
	}
	// Watch resumes by itself when the connection drops; it ends when ctx does or the callback
	// returns an error.
	err = c.Watch(ctx, client.WatchOptions{Kinds: []string{"services"}, After: last}, func(ev v1.Event) error {
		fmt.Println(ev.Seq, ev.Type, ev.Name, "by", ev.Actor)
		return nil
	})
	log.Fatal(err)
}
