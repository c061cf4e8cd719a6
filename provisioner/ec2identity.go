package provisioner

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
)

// ec2Document is the part of the IMDSv2 instance identity document the
// provisioner uses.
type ec2Document struct {
	AccountID        string `json:"accountId"`
	Architecture     string `json:"architecture"`
	AvailabilityZone string `json:"availabilityZone"`
	ImageID          string `json:"imageId"`
	InstanceID       string `json:"instanceId"`
	InstanceType     string `json:"instanceType"`
	Region           string `json:"region"`
}

// ec2Verifier checks instance identity signatures against the configured
// per-region certificates.
type ec2Verifier struct {
	keys     map[string]*rsa.PublicKey
	accounts []string
}

func newEC2Verifier(certs map[string]string, accounts []string) (*ec2Verifier, error) {
	v := &ec2Verifier{keys: map[string]*rsa.PublicKey{}, accounts: accounts}
	for region, p := range certs {
		block, _ := pem.Decode([]byte(p))
		if block == nil {
			return nil, fmt.Errorf("ec2Certificates[%s]: no PEM block: paste AWS's published certificate for the region", region)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ec2Certificates[%s]: %w", region, err)
		}
		key, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("ec2Certificates[%s]: certificate key is %T, want RSA", region, cert.PublicKey)
		}
		v.keys[region] = key
	}
	return v, nil
}

// verify checks the base64 RSA signature (PKCS#1 v1.5, SHA-256) of the raw
// document with its region's certificate and returns the parsed document.
func (v *ec2Verifier) verify(document, signature string) (*ec2Document, *apiError) {
	var doc ec2Document
	if err := json.Unmarshal([]byte(document), &doc); err != nil {
		return nil, badField("ec2.document", "not an instance identity document (JSON): %v", err)
	}
	if doc.InstanceID == "" || doc.Region == "" {
		return nil, badField("ec2.document", "instanceId and region are required in the identity document")
	}
	key, ok := v.keys[doc.Region]
	if !ok {
		return nil, errStatus(401, "AuthenticationFailed", "no certificate configured for EC2 region %s: add it to ec2Certificates", doc.Region)
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(signature))
	if err != nil {
		return nil, badField("ec2.signature", "not base64: %v", err)
	}
	sum := sha256.Sum256([]byte(document))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig); err != nil {
		return nil, errStatus(401, "AuthenticationFailed", "instance identity signature does not verify for region %s", doc.Region)
	}
	if len(v.accounts) > 0 && !slices.Contains(v.accounts, doc.AccountID) {
		return nil, errStatus(403, "Forbidden", "AWS account %s is not in ec2Accounts", doc.AccountID)
	}
	return &doc, nil
}
