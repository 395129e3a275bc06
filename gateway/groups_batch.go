package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/wsgate/wsgate/hub"
)

// maxBatchMessages bounds one batch publish (the body is bounded too, by
// maxMessageBytes): a backend with more sends several batches.
const maxBatchMessages = 1000

// batchPublish is the body of POST /{stage}/@groups.
type batchPublish struct {
	Messages []struct {
		Group string  `json:"group"`
		Data  *string `json:"data"`
	} `json:"messages"`
}

// publishBatch serves POST /{stage}/@groups: several publishes in one
// call, each {"group": g, "data": text} as POST @groups/{g} with that
// text as its body, in order. It answers {"results": [delivery, …]}, one
// per message, or a 400 without publishing anything when a message is
// malformed. A publish that fails stops the batch: 500 (the hub's error)
// naming how many were published before it.
func (g *Gateway) publishBatch(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeAPIError(w, errNotFound.with("No method found matching route "+g.cfg.Stage+"/@groups for http method "+r.Method+"."))
		return
	}
	body, aerr := readBody(r)
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	var in batchPublish
	if err := json.Unmarshal(body, &in); err != nil {
		writeAPIError(w, errBadRequest.with(`Invalid body: want {"messages": [{"group": "g", "data": "text"}, …]}: `+err.Error()))
		return
	}
	if len(in.Messages) == 0 || len(in.Messages) > maxBatchMessages {
		writeAPIError(w, errBadRequest.with("Invalid body: 1 to "+strconv.Itoa(maxBatchMessages)+" messages per call, got "+strconv.Itoa(len(in.Messages))+"."))
		return
	}
	for i, m := range in.Messages {
		switch {
		case !ValidGroup(m.Group):
			writeAPIError(w, errBadRequest.with("Invalid group name in message "+strconv.Itoa(i)+": "+GroupNameRule+"."))
			return
		case m.Data == nil:
			writeAPIError(w, errBadRequest.with("Message "+strconv.Itoa(i)+" has no data."))
			return
		}
	}
	out := struct {
		Results []hub.Delivery `json:"results"`
	}{make([]hub.Delivery, 0, len(in.Messages))}
	for i, m := range in.Messages {
		d, err := g.hub.Publish(r.Context(), m.Group, hub.NewMessage([]byte(*m.Data)))
		if err != nil {
			e := hubError(err)
			writeAPIError(w, e.with(e.Message+" ("+strconv.Itoa(i)+" of "+strconv.Itoa(len(in.Messages))+" messages published before this one)"))
			return
		}
		out.Results = append(out.Results, d)
	}
	writeJSON(w, http.StatusOK, out)
}
