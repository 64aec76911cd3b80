package cmd

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/controllers"
	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/node"
	"github.com/seedfleet/seedfleet/seednode/ticket"
)

// Invites of a public fleet that admits by invite: minted by a seed's admin
// API, or, on Kubernetes, signed here with the fleet key the operator keeps
// in a Secret (read through the kubeconfig: whoever may read the Secrets of
// the SeedNode's namespace may invite).

type inviteFlags struct {
	addr, dataDir, tokenFile string
	seedNode, kubeconfig     string
	uses                     int
	expires                  time.Duration
	qr                       bool
}

func newFleetInviteCmd() *cobra.Command {
	var f inviteFlags
	c := &cobra.Command{
		Use:   "invite",
		Short: "Mint an invite ticket for a fleet that admits by invite (a seed's admin API, or a SeedNode's fleet key)",
		Long: `Mint an invite ticket (invite...) that lets an agent be admitted by a public fleet whose admission
is Invite: the device runs seedfleet host request agent --fleet TICKET --invite INVITE. An invite
allows --uses admissions and expires after --expires; it is signed by the fleet's key, so every
seed of the fleet checks it alone.

With --seednode NAMESPACE/NAME the invite is signed here with the fleet key the operator keeps in
the SeedNode's Secret NAME-fleet-key, read through the kubeconfig (--kubeconfig, $KUBECONFIG, or
the in-cluster service account): who may read Secrets in that namespace may invite. Otherwise a
seed of the fleet mints it through its admin API (--admin), which needs its admin token
(--token-file, or admin.token in --data).`,
		Example: `  seedfleet fleet invite --seednode public-fleet/seeds --uses 1 --expires 72h --qr
  seedfleet fleet invite --admin 127.0.0.1:7401 --token-file /etc/seedfleet/admin/token --uses 10 --expires 720h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := admin.InviteRequest{Uses: f.uses, ExpiresIn: f.expires.String()}
			if _, _, err := req.Check(); err != nil {
				return fmt.Errorf("--uses %d --expires %s: %w", f.uses, f.expires, err)
			}
			var (
				inv   admin.Invite
				fleet string
				err   error
			)
			if f.seedNode != "" {
				inv, fleet, err = inviteFromSecret(cmd.Context(), f, req)
			} else {
				inv, fleet, err = inviteFromSeed(cmd.Context(), f, req)
			}
			if err != nil {
				return err
			}
			return printInvite(cmd.OutOrStdout(), cmd.ErrOrStderr(), inv, fleet, f.qr)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.seedNode, "seednode", "", "NAMESPACE/NAME of a SeedNode: sign with its fleet key Secret, read through the kubeconfig")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file, with --seednode (default: $KUBECONFIG, then the in-cluster service account)")
	fl.StringVar(&f.addr, "admin", config.DefaultAdminListen, "a fleet seed's admin API (host:port or URL), without --seednode")
	fl.StringVar(&f.dataDir, "data", config.DefaultDataDir, "the seed's data directory, which holds its admin token ("+node.AdminTokenFile+")")
	fl.StringVar(&f.tokenFile, "token-file", "", "file with the seed's admin token, instead of the one in --data")
	fl.IntVar(&f.uses, "uses", 1, "admissions the invite allows")
	fl.DurationVar(&f.expires, "expires", 72*time.Hour, "how long the invite is valid")
	fl.BoolVar(&f.qr, "qr", false, "also draw the invite as a QR code")
	return c
}

// inviteFromSeed has a seed of the fleet mint the invite.
func inviteFromSeed(ctx context.Context, f inviteFlags, req admin.InviteRequest) (admin.Invite, string, error) {
	api, tokenFile, err := tokenClient(f.addr, f.dataDir, f.tokenFile)
	if err != nil {
		return admin.Invite{}, "", err
	}
	inv, err := api.MintInvite(ctx, req)
	if err != nil {
		return admin.Invite{}, "", explainRefusal(err, f.addr, tokenFile)
	}
	t, err := ticket.ParseInviteTicket(inv.Ticket)
	if err != nil {
		return admin.Invite{}, "", fmt.Errorf("the seed at %s answered an invite that does not parse: %w", f.addr, err)
	}
	return inv, t.Fleet, nil
}

// inviteFromSecret signs the invite with the SeedNode's fleet key.
func inviteFromSecret(ctx context.Context, f inviteFlags, req admin.InviteRequest) (admin.Invite, string, error) {
	ns, name, ok := strings.Cut(f.seedNode, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return admin.Invite{}, "", fmt.Errorf("--seednode %q: want NAMESPACE/NAME", f.seedNode)
	}
	cfg, err := kubeConfig(f.kubeconfig)
	if err != nil {
		return admin.Invite{}, "", fmt.Errorf("no Kubernetes API server configured (use --kubeconfig or $KUBECONFIG): %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return admin.Invite{}, "", err
	}
	if err := seedv1.AddToScheme(scheme); err != nil {
		return admin.Invite{}, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return admin.Invite{}, "", err
	}
	sn := &seedv1.SeedNode{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, sn); err != nil {
		return admin.Invite{}, "", fmt.Errorf("SeedNode %s: %w", f.seedNode, err)
	}
	ss := sn.Spec.Hosting.SelfService
	switch {
	case ss == nil:
		return admin.Invite{}, "", fmt.Errorf("SeedNode %s is not a public fleet: set spec.hosting.selfService (admission: Invite)", f.seedNode)
	case ss.Admission != seedv1.AdmissionInvite:
		return admin.Invite{}, "", fmt.Errorf("SeedNode %s admits %s, not by invite (an invite would not be asked for): "+
			"set spec.hosting.selfService.admission: Invite", f.seedNode, ss.Admission)
	}
	secret := &corev1.Secret{}
	key := client.ObjectKey{Namespace: ns, Name: controllers.FleetKeySecretName(sn)}
	if err := c.Get(ctx, key, secret); err != nil {
		if apierrors.IsNotFound(err) {
			err = fmt.Errorf("%w (the operator creates it for a SeedNode with spec.hosting.selfService: is it running?)", err)
		}
		return admin.Invite{}, "", fmt.Errorf("fleet key Secret %s: %w", key, err)
	}
	fleetKey, err := identity.DecodePEM(secret.Data[controllers.KeyFleetKey])
	if err != nil {
		return admin.Invite{}, "", fmt.Errorf("fleet key Secret %s: %w", key, err)
	}
	uses, expiresIn, _ := req.Check()
	var id [ticket.InviteIDLen]byte
	if _, err := rand.Read(id[:]); err != nil {
		return admin.Invite{}, "", err
	}
	fleet := controllers.FleetName(sn)
	t, err := ticket.NewInviteTicket(fleet, id, time.Now().Add(expiresIn), uses, fleetKey)
	if err != nil {
		return admin.Invite{}, "", err
	}
	return admin.Invite{Ticket: t.String(), Uses: t.Uses, NotAfter: t.NotAfter}, fleet, nil
}

func printInvite(out, errOut io.Writer, inv admin.Invite, fleet string, qr bool) error {
	fmt.Fprintln(out, inv.Ticket)
	fmt.Fprintf(errOut, "invite to fleet %s: %d admission(s), valid until %s\n", fleet, inv.Uses, inv.NotAfter.Local().Format(time.RFC3339))
	if qr {
		return ticket.QR(out, strings.ToUpper(inv.Ticket))
	}
	return nil
}
