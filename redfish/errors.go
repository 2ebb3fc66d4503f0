package redfish

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
)

// baseRegistry is the version of DMTF's Base message registry whose
// MessageIds the errors use.
const baseRegistry = "Base.1.8."

// Message is one entry of @Message.ExtendedInfo.
type Message struct {
	ODataType         string   `json:"@odata.type"`
	MessageID         string   `json:"MessageId"`
	Message           string   `json:"Message"`
	MessageArgs       []string `json:"MessageArgs,omitempty"`
	RelatedProperties []string `json:"RelatedProperties,omitempty"`
	Severity          string   `json:"Severity"`
	Resolution        string   `json:"Resolution,omitempty"`
}

// ErrorBody is Redfish's error response.
type ErrorBody struct {
	Error struct {
		Code         string    `json:"code"`
		Message      string    `json:"message"`
		ExtendedInfo []Message `json:"@Message.ExtendedInfo"`
	} `json:"error"`
}

// apiError is an error answered to the client.
type apiError struct {
	status     int
	id         string   // Base registry message name, e.g. "PropertyUnknown"
	msg        string   // human-readable message
	args       []string // MessageArgs
	property   string   // the property at fault, as a JSON pointer without "#"
	resolution string
	header     http.Header // extra response headers (Allow, WWW-Authenticate, Retry-After)
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, id, msg string, args ...string) *apiError {
	return &apiError{status: status, id: id, msg: msg, args: args}
}

// propError is a 400 naming a property.
func propError(id, property, msg string, args ...string) *apiError {
	return &apiError{status: http.StatusBadRequest, id: id, msg: msg, args: args, property: property}
}

func (e *apiError) with(key, value string) *apiError {
	if e.header == nil {
		e.header = http.Header{}
	}
	e.header.Set(key, value)
	return e
}

func (e *apiError) body() ErrorBody {
	var b ErrorBody
	b.Error.Code = baseRegistry + e.id
	b.Error.Message = e.msg
	m := Message{
		ODataType:   "#Message.v1_1_1.Message",
		MessageID:   baseRegistry + e.id,
		Message:     e.msg,
		MessageArgs: e.args,
		Severity:    "Warning",
		Resolution:  e.resolution,
	}
	if e.status >= 500 {
		m.Severity = "Critical"
	}
	if e.property != "" {
		m.RelatedProperties = []string{"#/" + e.property}
	}
	b.Error.ExtendedInfo = []Message{m}
	return b
}

// Common errors.
func errNotFound(uri string) *apiError {
	return errorf(http.StatusNotFound, "ResourceMissingAtURI", "The resource at the URI "+uri+" was not found.", uri)
}

func errUnauthorized() *apiError {
	return errorf(http.StatusUnauthorized, "NoValidSession",
		"There is no valid session established with the implementation.").
		with("WWW-Authenticate", `Basic realm="govbmc", charset="UTF-8"`)
}

func errForbidden() *apiError {
	return errorf(http.StatusForbidden, "InsufficientPrivilege",
		"There are insufficient privileges for the account or credentials associated with the current session to perform the requested operation.")
}

func errThrottled(retry int) *apiError {
	return errorf(http.StatusTooManyRequests, "GeneralError",
		"Too many failed logins from this address; try again in "+strconv.Itoa(retry)+" seconds.").
		with("Retry-After", strconv.Itoa(retry))
}

func errMethod(allow string) *apiError {
	return errorf(http.StatusMethodNotAllowed, "OperationNotAllowed",
		"The HTTP method is not allowed on this resource; allowed: "+allow+".").with("Allow", allow)
}

func errMalformed(detail string) *apiError {
	return errorf(http.StatusBadRequest, "MalformedJSON",
		"The request body submitted was malformed JSON and could not be parsed by the receiving service: "+detail+".")
}

func errUnavailable() *apiError {
	return errorf(http.StatusServiceUnavailable, "ServiceTemporarilyUnavailable",
		"The machine behind this system cannot be reached; the daemon's log says why.").with("Retry-After", "5")
}

func errNotWritable(property string) *apiError {
	return propError("PropertyNotWritable", property, "The property "+property+" is a read only property and cannot be assigned a value.", property)
}

func errUnknownProperty(property string) *apiError {
	return propError("PropertyUnknown", property, "The property "+property+" is not in the list of valid properties for the resource.", property)
}

func errValueType(property, value string) *apiError {
	return propError("PropertyValueTypeError", property, "The value "+value+" for the property "+property+" is of a different type than the property can accept.", value, property)
}

func errNotInList(property, value string) *apiError {
	return propError("PropertyValueNotInList", property, "The value "+value+" for the property "+property+" is not in the list of acceptable values.", value, property)
}

// backendPrefix is how a backend names itself in its errors (the libvirt
// domain and hypervisor URI, and the operation): the daemon's log has it,
// a Redfish client does not need it.
var backendPrefix = regexp.MustCompile(`^(domain "[^"]*" on \S+: [^:]+: |simulated machine "[^"]*": )`)

// reason is the part of a machine's error a client is told.
func reason(err error) string {
	return backendPrefix.ReplaceAllString(err.Error(), "")
}

// actionArgs are the parameters of an action's request body.
type actionArgs struct {
	action string
	body   map[string]any
}

// only refuses a parameter not in known.
func (a actionArgs) only(known ...string) error {
	for k := range a.body {
		if !slices.Contains(known, k) {
			return errorf(http.StatusBadRequest, "ActionParameterUnknown",
				"The action "+a.action+" was submitted with the invalid parameter "+k+".", a.action, k)
		}
	}
	return nil
}

// str reads a string parameter; ok is false when it is absent.
func (a actionArgs) str(name string) (string, bool, error) {
	v, ok := a.body[name]
	if !ok {
		return "", false, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", false, errActionParamType(a.action, name, fmt.Sprint(v))
	}
	return s, true, nil
}

func errActionParamType(action, param, value string) *apiError {
	e := errorf(http.StatusBadRequest, "ActionParameterValueTypeError",
		"The value "+value+" for the parameter "+param+" in the action "+action+" is of a different type than the parameter can accept.",
		value, param, action)
	e.property = param
	return e
}

func errActionParamMissing(action, param string) *apiError {
	e := errorf(http.StatusBadRequest, "ActionParameterMissing",
		"The action "+action+" requires the parameter "+param+" to be present in the request body.", action, param)
	e.property = param
	return e
}

func errActionParamNotInList(action, param, value string) *apiError {
	e := errorf(http.StatusBadRequest, "ActionParameterValueNotInList",
		"The value "+value+" for the parameter "+param+" in the action "+action+" is not in the list of acceptable values.",
		value, param, action)
	e.property = param
	return e
}
