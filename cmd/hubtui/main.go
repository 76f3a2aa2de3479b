// Command hubtui is the terminal admin console for hubd. It talks to the
// running hub over its unix admin socket.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	fs := flag.NewFlagSet("hubtui", flag.ContinueOnError)
	socket := fs.String("socket", "/run/hubd/hubd.sock", "the hub's admin socket")
	fs.Bool("readonly", false, "hide every action that changes the hub")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "hubtui: this build has no admin console yet (socket %s); use `hubd backup` and `hubd upgrade-db` from the shell\n", *socket)
	os.Exit(1)
}
