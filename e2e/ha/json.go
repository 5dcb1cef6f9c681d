package ha

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// decodeJSON reads a 200 answer's JSON body into out.
func decodeJSON(resp *http.Response, out any) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
