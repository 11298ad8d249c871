package table

import (
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Environment of the credential sources a pod has. They are the AWS SDK's
// own names, so the usual EKS injection works unchanged.
const (
	envAccessKeyID        = "AWS_ACCESS_KEY_ID"
	envSecretAccessKey    = "AWS_SECRET_ACCESS_KEY"
	envSessionToken       = "AWS_SESSION_TOKEN"
	envWebIdentityToken   = "AWS_WEB_IDENTITY_TOKEN_FILE" // IRSA
	envRoleARN            = "AWS_ROLE_ARN"
	envRoleSessionName    = "AWS_ROLE_SESSION_NAME"
	envContainerFullURI   = "AWS_CONTAINER_CREDENTIALS_FULL_URI" // EKS Pod Identity, ECS
	envContainerRelURI    = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
	envContainerTokenFile = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
	envContainerToken     = "AWS_CONTAINER_AUTHORIZATION_TOKEN"
	ecsCredentialsHost    = "http://169.254.170.2"
	roleSessionDefault    = "sebelas"
)

// podCredentials is the credential chain of a function's pod, in the order
// the SDK's default chain takes them: static keys from the environment, web
// identity (IRSA), the container endpoint (EKS Pod Identity), then the
// instance role (IMDS).
//
// Why not config.LoadDefaultConfig: it also links the shared-config file
// reader, SSO, SSO-OIDC and the sign-in service, about 1.2 MB of a
// function's binary (the fraud binary was over its 25 MB budget by 1.1 MB),
// for sources a pod never has. The CLI, which runs on an operator's laptop
// with profiles and SSO, passes its own provider (Config.Credentials).
func podCredentials(region string, getenv func(string) string, httpClient aws.HTTPClient) (aws.CredentialsProvider, error) {
	if id := getenv(envAccessKeyID); id != "" {
		secret := getenv(envSecretAccessKey)
		if secret == "" {
			return nil, fmt.Errorf("table: %s is set without %s", envAccessKeyID, envSecretAccessKey)
		}
		return credentials.NewStaticCredentialsProvider(id, secret, getenv(envSessionToken)), nil
	}
	if file := getenv(envWebIdentityToken); file != "" {
		role := getenv(envRoleARN)
		if role == "" {
			return nil, fmt.Errorf("table: %s is set without %s", envWebIdentityToken, envRoleARN)
		}
		session := getenv(envRoleSessionName)
		if session == "" {
			session = roleSessionDefault
		}
		client := sts.NewFromConfig(aws.Config{Region: region, HTTPClient: httpClient})
		return aws.NewCredentialsCache(stscreds.NewWebIdentityRoleProvider(client, role,
			stscreds.IdentityTokenFile(file), func(o *stscreds.WebIdentityRoleOptions) { o.RoleSessionName = session })), nil
	}
	uri := getenv(envContainerFullURI)
	if rel := getenv(envContainerRelURI); uri == "" && rel != "" {
		uri = ecsCredentialsHost + rel
	}
	if uri != "" {
		return aws.NewCredentialsCache(endpointcreds.New(uri, func(o *endpointcreds.Options) {
			o.HTTPClient = httpClient
			o.AuthorizationToken = getenv(envContainerToken)
			if file := getenv(envContainerTokenFile); file != "" {
				o.AuthorizationTokenProvider = tokenFile(file)
			}
		})), nil
	}
	return aws.NewCredentialsCache(ec2rolecreds.New()), nil
}

// tokenFile reads the container authorization token at every refresh: EKS
// rotates the file.
type tokenFile string

func (f tokenFile) GetToken() (string, error) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return "", fmt.Errorf("table: read %s: %w", envContainerTokenFile, err)
	}
	return strings.TrimSpace(string(b)), nil
}

var _ endpointcreds.AuthTokenProvider = tokenFile("")
