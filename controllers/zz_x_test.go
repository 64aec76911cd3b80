package controllers
import ("context";"testing";"github.com/seedfleet/seedfleet/internal/envtestutil")
func TestXInvalid(t *testing.T){
	e := envtestutil.Start(t)
	sn := fixtureFullSeedNode(); sn.Namespace = "default"
	sts := buildStatefulSet(sn, "img", 1, "h")
	sts.Spec.Template.Labels = map[string]string{"x": "y"}
	t.Log(e.Client.Create(context.Background(), sts))
	svc := buildPodService(sn, 0); svc.Spec.Ports[0].Name = "P2P_"
	t.Log(e.Client.Create(context.Background(), svc))
}
