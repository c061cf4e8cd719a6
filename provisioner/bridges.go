package provisioner

// The provisioner's view of the Buildbot Bridge instances: where their
// HTTP listeners are (Config.Bridges).

import (
	"fmt"
	"net/url"
)

// BridgeEndpoint is one bridge instance's HTTP listener (its `listen`
// address, or wherever it is mounted).
type BridgeEndpoint struct {
	// Name labels the instance on the pages (its instance_id, say).
	Name string `yaml:"name" json:"name"`
	// URL is the base URL; /api/v1/status is asked under it.
	URL string `yaml:"url" json:"url"`
}

func checkBridges(bs []BridgeEndpoint) error {
	seen := map[string]bool{}
	for i, b := range bs {
		if b.Name == "" {
			return fmt.Errorf("bridges[%d].name: empty: name each bridge instance (its instance_id)", i)
		}
		if seen[b.Name] {
			return fmt.Errorf("bridges[%d].name: %q appears twice: names must differ", i, b.Name)
		}
		seen[b.Name] = true
		u, err := url.Parse(b.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("bridges[%d].url: %q is not an http(s) URL such as http://bridge-1:8090", i, b.URL)
		}
	}
	return nil
}
