package smtptest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
)

// Message is one message the server accepted.
type Message struct {
	// From and To are the envelope sender and recipients (MAIL FROM and
	// RCPT TO), which is where Bcc recipients show up; the header's From
	// and To are in Header.
	From string
	To   []string
	// Raw is the message as received in DATA, dot-stuffing removed.
	Raw        []byte
	ReceivedAt time.Time
	// Header is the parsed message header; Subject is its Subject with
	// RFC 2047 encoded-words decoded.
	Header  mail.Header
	Subject string
	// Text and HTML are the first text/plain and text/html bodies that are
	// not attachments, with their transfer encoding (base64 or
	// quoted-printable) removed and CRLF line ends turned into LF. They
	// are found at any depth of nested multiparts, e.g.
	// multipart/alternative inside multipart/mixed. The charset is not
	// converted: senders of this project write UTF-8.
	Text string
	HTML string
	// ParseErr says why Header, Subject, Text or HTML could not be filled
	// in; Raw is kept either way.
	ParseErr error
}

// parse fills the parts of a Message that come from its content.
func parse(raw []byte) Message {
	msg := Message{Raw: raw}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		msg.ParseErr = fmt.Errorf("read header: %w", err)
		return msg
	}
	msg.Header = m.Header

	var dec mime.WordDecoder
	subject := m.Header.Get("Subject")
	if msg.Subject, err = dec.DecodeHeader(subject); err != nil {
		msg.Subject = subject
		msg.ParseErr = fmt.Errorf("decode subject: %w", err)
	}

	if err := walk(m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), "", m.Body, &msg); err != nil {
		msg.ParseErr = errors.Join(msg.ParseErr, err)
	}
	return msg
}

// walk decodes one MIME entity and, for multiparts, every part inside it,
// keeping the first inline text/plain and text/html bodies in msg.
func walk(contentType, transferEncoding, disposition string, body io.Reader, msg *Message) error {
	mediaType, params := "text/plain", map[string]string{}
	if contentType != "" {
		var err error
		if mediaType, params, err = mime.ParseMediaType(contentType); err != nil {
			return fmt.Errorf("content type %q: %w", contentType, err)
		}
	}

	if strings.HasPrefix(mediaType, "multipart/") {
		boundary := params["boundary"]
		if boundary == "" {
			return fmt.Errorf("%s without a boundary", mediaType)
		}
		// NextRawPart leaves Content-Transfer-Encoding alone, so decoding
		// happens in one place for every part.
		mr := multipart.NewReader(body, boundary)
		for {
			part, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: next part: %w", mediaType, err)
			}
			err = walk(part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"),
				part.Header.Get("Content-Disposition"), part, msg)
			if err != nil {
				return err
			}
		}
	}

	if mediaType != "text/plain" && mediaType != "text/html" {
		return nil
	}
	if d, _, err := mime.ParseMediaType(disposition); err == nil && d == "attachment" {
		return nil
	}
	if (mediaType == "text/plain" && msg.Text != "") || (mediaType == "text/html" && msg.HTML != "") {
		return nil
	}

	decoded, err := io.ReadAll(decodeTransfer(transferEncoding, body))
	if err != nil {
		return fmt.Errorf("%s body (%s): %w", mediaType, transferEncoding, err)
	}
	text := strings.ReplaceAll(string(decoded), "\r\n", "\n")
	if mediaType == "text/plain" {
		msg.Text = text
	} else {
		msg.HTML = text
	}
	return nil
}

// decodeTransfer undoes a Content-Transfer-Encoding. 7bit, 8bit, binary and
// an absent header mean the body is as sent.
func decodeTransfer(encoding string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "base64":
		// Encoded lines end in CRLF, which the base64 decoder skips.
		return base64.NewDecoder(base64.StdEncoding, r)
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	default:
		return r
	}
}
