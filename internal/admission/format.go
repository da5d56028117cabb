package admission

import (
	"encoding/base64"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

var (
	uuidRE     = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	uuid3RE    = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-3[0-9a-fA-F]{3}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	uuid4RE    = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$`)
	uuid5RE    = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-5[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$`)
	hexcolorRE = regexp.MustCompile(`^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)
	rgbcolorRE = regexp.MustCompile(`^rgb\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*\)$`)
	objectIDRE = regexp.MustCompile(`^[0-9a-fA-F]{24}$`)
	durationRE = regexp.MustCompile(`^(\s*\d+\s*(ns|us|µs|ms|s|m|h|d|w|hours?|minutes?|seconds?|days?|weeks?|mins?|secs?)\s*)+$`)
)

// validFormat reports whether s has the string format f. Formats that
// Kubernetes does not check (int32, int64, float, double, password and
// unknown ones) accept every string.
func validFormat(f, s string) bool {
	switch f {
	case "byte":
		_, err := base64.StdEncoding.DecodeString(s)
		return err == nil
	case "date":
		_, err := time.Parse(time.DateOnly, s)
		return err == nil
	case "date-time", "datetime":
		return validDateTime(s)
	case "duration":
		_, err := time.ParseDuration(s)
		return err == nil || durationRE.MatchString(s)
	case "uuid":
		return uuidRE.MatchString(s)
	case "uuid3":
		return uuid3RE.MatchString(s)
	case "uuid4":
		return uuid4RE.MatchString(s)
	case "uuid5":
		return uuid5RE.MatchString(s)
	case "email":
		_, err := mail.ParseAddress(s)
		return err == nil
	case "hostname":
		return len(validation.IsDNS1123Subdomain(strings.ToLower(s))) == 0
	case "ipv4":
		ip := net.ParseIP(s)
		return ip != nil && ip.To4() != nil && !strings.Contains(s, ":")
	case "ipv6":
		return net.ParseIP(s) != nil && strings.Contains(s, ":")
	case "cidr":
		_, _, err := net.ParseCIDR(s)
		return err == nil
	case "mac":
		_, err := net.ParseMAC(s)
		return err == nil
	case "uri":
		u, err := url.Parse(s)
		return err == nil && u.Scheme != ""
	case "hexcolor":
		return hexcolorRE.MatchString(s)
	case "rgbcolor":
		return rgbcolorRE.MatchString(s)
	case "bsonobjectid":
		return objectIDRE.MatchString(s)
	}
	return true
}

// validDateTime accepts RFC 3339 with or without fractional seconds, and
// the lower-case and space-separated variants RFC 3339 allows.
func validDateTime(s string) bool {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07:00"} {
		if _, err := time.Parse(layout, strings.ToUpper(s)); err == nil {
			return true
		}
	}
	return false
}
