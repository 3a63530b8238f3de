package access

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// amzDateLayout is the layout of X-Amz-Date.
const amzDateLayout = "20060102T150405Z"

// ParseExpiry reads a signed URL's X-Amz-Date and X-Amz-Expires (seconds).
// ok reports whether both are present and valid; then issued is X-Amz-Date
// and expires is issued plus X-Amz-Expires. issued is also set, with ok
// false, when only X-Amz-Date is valid; otherwise both times are zero.
func ParseExpiry(rawURL string) (issued, expires time.Time, ok bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return time.Time{}, time.Time{}, false
	}
	q := u.Query()
	issued, err = time.Parse(amzDateLayout, queryGet(q, "X-Amz-Date"))
	if err != nil {
		return time.Time{}, time.Time{}, false
	}
	issued = issued.UTC()
	secs, err := strconv.ParseInt(queryGet(q, "X-Amz-Expires"), 10, 64)
	if err != nil || secs <= 0 || secs > maxExpires {
		return issued, time.Time{}, false
	}
	return issued, issued.Add(time.Duration(secs) * time.Second), true
}

// maxExpires bounds X-Amz-Expires (AWS allows at most 7 days) well below
// time.Duration overflow.
const maxExpires = 10 * 365 * 24 * 3600

// queryGet returns the first value of key, matched exactly or else
// case-insensitively.
func queryGet(q url.Values, key string) string {
	if v, ok := q[key]; ok && len(v) > 0 {
		return v[0]
	}
	for k, v := range q {
		if strings.EqualFold(k, key) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}
