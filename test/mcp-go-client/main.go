// mcp-go-client: connects to an MCP server over Streamable HTTP with a bearer
// token and a CA file, then lists the tools or calls one, and prints the
// result as one JSON object: {"tools": [...]} or {"isError": …, "text": …}.
//
//	mcp-go-client -url URL -token-file F -ca F (-list | -tool NAME [-args JSON])
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "mcp-go-client: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	url := flag.String("url", "", "the MCP endpoint")
	tokenFile := flag.String("token-file", "", "a file holding the bearer token")
	caFile := flag.String("ca", "", "PEM of the CA to trust")
	list := flag.Bool("list", false, "list the tools")
	tool := flag.String("tool", "", "the tool to call")
	args := flag.String("args", "{}", "the tool's arguments, as JSON")
	flag.Parse()

	token, err := os.ReadFile(*tokenFile)
	if err != nil {
		fail("%v", err)
	}
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		fail("%v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fail("no certificate in %s", *caFile)
	}
	httpClient := &http.Client{Transport: bearer{
		token: strings.TrimSpace(string(token)),
		next:  &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "gatehouse-go-client", Version: "1.0.0"}, nil)
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: *url, HTTPClient: httpClient}, nil)
	if err != nil {
		fail("connect: %v", err)
	}
	defer session.Close()

	out := map[string]any{}
	switch {
	case *list:
		res, err := session.ListTools(ctx, nil)
		if err != nil {
			fail("tools/list: %v", err)
		}
		names := []string{}
		for _, t := range res.Tools {
			names = append(names, t.Name)
		}
		out["tools"] = names
	case *tool != "":
		var arguments map[string]any
		if err := json.Unmarshal([]byte(*args), &arguments); err != nil {
			fail("-args: %v", err)
		}
		res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: *tool, Arguments: arguments})
		if err != nil {
			fail("tools/call %s: %v", *tool, err)
		}
		var text strings.Builder
		for _, c := range res.Content {
			if t, ok := c.(*mcp.TextContent); ok {
				text.WriteString(t.Text)
			}
		}
		out["isError"] = res.IsError
		out["text"] = text.String()
	default:
		fail("give -list or -tool")
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail("%v", err)
	}
}
